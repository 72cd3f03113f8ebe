# DyT-dagger: MoE-adapter with N = 4 experts (the paper's best for video) on Kinetics-400.
# Paper (Table 6): 75.43 top-1, 105.45 GFLOPs per 8-frame clip.
_base_ = ['./dyt-r0.5_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py']
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
