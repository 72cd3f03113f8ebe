# VTAB-1K kitti-dist: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 78.5 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=4))
train_dataloader = dict(dataset=dict(task='kitti'))
val_dataloader = dict(dataset=dict(task='kitti'))
test_dataloader = val_dataloader
