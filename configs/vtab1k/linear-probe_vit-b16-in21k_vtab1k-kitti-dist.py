# VTAB-1K kitti-dist: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 55.4 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=4))
train_dataloader = dict(dataset=dict(task='kitti'))
val_dataloader = dict(dataset=dict(task='kitti'))
test_dataloader = val_dataloader
