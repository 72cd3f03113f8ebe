# VTAB-1K kitti-dist: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 72.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=4))
train_dataloader = dict(dataset=dict(task='kitti'))
val_dataloader = dict(dataset=dict(task='kitti'))
test_dataloader = val_dataloader
