# UperNet on ADE20K (160k iterations, 512 x 512 crops): AdaptFormer (DyT's parallel adapter, d =
# 64, in every layer; no dispatch).
# Paper (Table 10): 47.52 mIoU, 606.57 GFLOPs.
_base_ = './dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
