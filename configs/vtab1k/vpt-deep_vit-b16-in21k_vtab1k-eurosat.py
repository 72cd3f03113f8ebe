# VTAB-1K eurosat: VPT-deep, 100 prompts per layer (VPT's length for this task, see the base;
# 0.922 M parameters, 27.00 GFLOPs; no dispatch).
# Paper (Table 3): 96.1 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=100)), head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
