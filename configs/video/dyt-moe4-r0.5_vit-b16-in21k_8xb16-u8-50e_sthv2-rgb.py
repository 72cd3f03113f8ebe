# DyT-dagger: MoE-adapter with N = 4 experts (the paper's best for video) on SSv2.
# Paper (Table 6): 46.56 top-1.
_base_ = ['./dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py']
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
