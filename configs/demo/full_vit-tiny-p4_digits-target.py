# Digits demo, stage 2 of `make demo-compare`: full tuning: every parameter trains, at 1/10 of
# the lr (paper App. A.8). Same source ViT, data and schedule as the DyT stage.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
optim_wrapper = dict(optimizer=dict(lr=3e-3 / 10))
