# DyT (MLP dispatch, d = 64, r = 0.5) on CIFAR100 with token merging (ToMe): 8 image tokens
# merged per block, between attention and the MLP; the dispatchers gate the merged tokens.
# The paper reports DyT + ToMe on VTAB-1K only (Table 5); see the vtab1k configs.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'

model = dict(backbone=dict(merge=dict(r=8)))
