# Video demo (`make demo-dyt-lora`): AdaptFormer: the DyT demo's adapter (d = 16) in every
# layer, no dispatch. Same random frozen base (seeded), data and schedule.
_base_ = ['./dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py']

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
