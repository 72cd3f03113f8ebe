# VTAB-1K cifar100: AdaptFormer (d = 8) with token merging (ToMe, 8 image tokens merged per
# block). Paper (Table 5, mean over VTAB-1K): 74.30 top-1, 13.29 GFLOPs.
_base_ = './adaptformer-d8_vit-b16-in21k_vtab1k-cifar100.py'

model = dict(backbone=dict(merge=dict(r=8)))
