# DyT-dagger: MoE-adapter with N = 4 experts (d = 128 each).
# Paper (Table 11): 40.97 box mAP, 37.11 mask mAP, 466.32 GFLOPs (backbone + FPN).
_base_ = ['./dyt-r0.5_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py']
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
