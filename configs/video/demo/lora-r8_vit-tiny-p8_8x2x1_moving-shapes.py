# Video demo (`make demo-dyt-lora`): LoRA rank 8 on q and v, no dispatch. Same random frozen base
# (seeded), data and schedule as the DyT demo.
_base_ = ['./dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py']

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
