# Digits demo, stage 2 of `make demo-compare`: VPT-deep with 8 prompts per layer. Same source
# ViT, data and schedule as the DyT stage.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(
    backbone=dict(
        adapter=dict(_delete_=True, type='VPTPrompts', num_prompts=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
