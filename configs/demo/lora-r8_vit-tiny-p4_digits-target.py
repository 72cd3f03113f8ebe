# Digits demo, stage 2 of `make demo-compare`: LoRA rank 8 on q and v (separate updates;
# 2 x 2 x 192 x 8 parameters per layer, about the adapter's). Same source ViT, data and schedule
# as the DyT stage.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
