# ViTDet Mask R-CNN on COCO (12 epochs): AdaptFormer (DyT's parallel adapter, d = 128, in every
# layer; no dispatch).
# Paper (Table 11): 38.71 box mAP, 35.27 mask mAP, 564.53 GFLOPs (backbone + FPN).
_base_ = './dyt-r0.5_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py'

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
