# VTAB-1K cifar100: full tuning with token merging (ToMe, 8 image tokens merged per block).
# Paper (Table 5, mean over VTAB-1K): 68.68 top-1, 13.12 GFLOPs.
_base_ = './full_vit-b16-in21k_vtab1k-cifar100.py'

model = dict(backbone=dict(merge=dict(r=8)))
