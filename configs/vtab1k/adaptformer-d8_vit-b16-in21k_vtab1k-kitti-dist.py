# VTAB-1K kitti-dist: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 80.3 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=4))
train_dataloader = dict(dataset=dict(task='kitti'))
val_dataloader = dict(dataset=dict(task='kitti'))
test_dataloader = val_dataloader
