# DyT-dagger: MoE-adapter with N = 4 experts (the paper's best for segmentation).
# Paper (Table 10): 47.67 mIoU on ADE20K, 584.40 GFLOPs.
_base_ = ['./dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py']
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
