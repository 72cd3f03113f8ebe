# VTAB-1K caltech101: VPT-deep, 10 prompts per layer (VPT's length for this task, see the base;
# 0.092 M parameters, 18.51 GFLOPs; no dispatch).
# Paper (Table 3): 90.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=10)), head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
