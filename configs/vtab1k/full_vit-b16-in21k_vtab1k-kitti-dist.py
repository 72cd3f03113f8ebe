# VTAB-1K kitti-dist: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 65.5 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=4))
train_dataloader = dict(dataset=dict(task='kitti'))
val_dataloader = dict(dataset=dict(task='kitti'))
test_dataloader = val_dataloader
