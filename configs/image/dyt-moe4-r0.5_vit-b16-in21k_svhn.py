# DyT-dagger: MoE-adapter with N = 4 experts. Paper (Table 6): 96.9 top-1.
_base_ = './dyt-r0.5_vit-b16-in21k_svhn.py'
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
