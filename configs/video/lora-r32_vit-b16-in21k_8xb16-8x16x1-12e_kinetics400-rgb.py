# Kinetics-400, 8 frames: LoRA rank 32 on q and v (1.18 M parameters; no dispatch).
# Paper (Table 6): 75.48 top-1, 142.53 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py'

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=32), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
