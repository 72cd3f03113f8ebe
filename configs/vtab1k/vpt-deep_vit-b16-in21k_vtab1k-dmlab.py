# VTAB-1K dmlab: VPT-deep, 100 prompts per layer (VPT's length for this task, see the base;
# 0.922 M parameters, 27.00 GFLOPs; no dispatch).
# Paper (Table 3): 46.5 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=100)), head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='dmlab'))
val_dataloader = dict(dataset=dict(task='dmlab'))
test_dataloader = val_dataloader
