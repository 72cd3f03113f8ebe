# Segmentation demo (`make demo-dyt-lora`): AdaptFormer: the DyT stage's adapter (d = 16) in
# every layer, no dispatch; new pyramid and heads. Same source ViT, data and schedule.
_base_ = ['./dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py']

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
