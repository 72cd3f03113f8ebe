# Kinetics-400, 8 frames: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 6): 69.04 top-1, 142.53 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
