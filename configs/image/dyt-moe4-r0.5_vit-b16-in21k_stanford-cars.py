# DyT-dagger: MoE-adapter with N = 4 experts. Paper (Table 6): 87.61 top-1.
_base_ = './dyt-r0.5_vit-b16-in21k_stanford-cars.py'
model = dict(backbone=dict(adapter=dict(type='MoEAdapter', num_experts=4)))
