# DyT-dagger: MoE-adapter with N = 4 experts. Paper (Table 10): 45.71 mIoU on COCO-Stuff-164k.
_base_ = ['./dyt-r0.5_upernet_vit-b16-in21k_8xb2-80k_coco-stuff164k-512x512.py']
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
