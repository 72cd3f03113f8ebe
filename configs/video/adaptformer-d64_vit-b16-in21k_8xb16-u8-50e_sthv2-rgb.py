# Something-Something V2, 8 frames: AdaptFormer (DyT's parallel adapter, d = 64, in every layer;
# no dispatch).
# Paper (Table 6): 45.36 top-1, 144.39 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py'

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
