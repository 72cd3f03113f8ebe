# Digits demo: Dynamic-Full as the paper states it: DyT's token dispatch (r = 0.5) with every ViT
# parameter trained, no adapter, L = L_cls + 2 L_rate, one lr (1/10 of DyT's) for every
# parameter. Ours, with DyT's complete-model loss, distillation and the dispatchers at the full
# lr, is dynamic-full-r0.5_vit-tiny-p4_digits-target.py (the one `make demo-compare` runs).
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(backbone=dict(adapter=None, freeze_base=False),
             dyt_loss=dict(complete_weight=0.0, distill_weight=0.0))
optim_wrapper = dict(optimizer=dict(lr=3e-3 / 10))
