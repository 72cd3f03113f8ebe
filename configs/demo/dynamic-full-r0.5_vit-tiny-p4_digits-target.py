# Digits demo, stage 2 of `make demo-compare`: Dynamic-Full: DyT's token dispatch (r = 0.5) with
# every ViT parameter trained, no adapter, at 1/10 of the lr (the dispatchers at the full lr).
# Same source ViT, data and schedule as the DyT stage. The complete-model loss, distillation and
# the dispatchers' lr are ours; the paper-literal variant is
# dynamic-full-paper-r0.5_vit-tiny-p4_digits-target.py.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(backbone=dict(adapter=None, freeze_base=False))
optim_wrapper = dict(
    optimizer=dict(lr=3e-3 / 10),
    paramwise_cfg=dict(custom_keys={'.dispatchers.': dict(lr_mult=10.0)}))
