# VTAB-1K cifar100: DyT r = 0.5, d = 8, with token merging (ToMe): 8 image tokens merged per
# block, between attention and the MLP, so the dispatchers gate the merged tokens.
# Paper (Table 5, mean over VTAB-1K): 76.60 top-1, 9.85 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_vtab1k-cifar100.py'

model = dict(backbone=dict(merge=dict(r=8)))
