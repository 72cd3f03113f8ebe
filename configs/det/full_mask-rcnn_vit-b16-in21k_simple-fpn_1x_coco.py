# ViTDet Mask R-CNN on COCO (12 epochs): full tuning (every parameter trains; no adapter, no
# dispatch).
# Paper (Table 11): 44.67 box mAP, 39.78 mask mAP, 554.86 GFLOPs (backbone + FPN).
_base_ = './dyt-r0.5_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
# Full-tuning baselines use 1/10 of the base lr (paper App. A.8); 1e-4 is also ViTDet's.
optim_wrapper = dict(optimizer=dict(lr=1e-3 / 10))
