# VTAB-1K sun397: VPT-deep, 5 prompts per layer (VPT's length for this task, see the base;
# 0.046 M parameters, 18.04 GFLOPs; no dispatch).
# Paper (Table 3): 49.6 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=5)), head=dict(num_classes=397))
train_dataloader = dict(dataset=dict(task='sun397'))
val_dataloader = dict(dataset=dict(task='sun397'))
test_dataloader = val_dataloader
