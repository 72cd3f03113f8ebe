# SVHN: Dynamic-Full as the paper states it ("TD + all params tuned", Table 6) and nothing more:
# DyT's token dispatch, r = 0.5, every ViT parameter trained, no adapter; L = L_cls + 2 L_rate
# (the paper gives the complete-model loss and distillation for DyT, not for this row); one lr
# for every parameter, the dispatchers' too: 1/10 of the base lr, the paper's rule for full
# tuning, the other row that trains the whole ViT. dyt-mm's own variant:
# dynamic-full-r0.5_vit-b16-in21k_svhn.py.
# Paper (Table 6): 96.90 top-1, 12.24 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_svhn.py'

model = dict(backbone=dict(adapter=None, freeze_base=False),
             dyt_loss=dict(complete_weight=0.0, distill_weight=0.0))
optim_wrapper = dict(optimizer=dict(lr=4e-3 / 10))
