# VTAB-1K svhn: VPT-deep, 50 prompts per layer (VPT's length for this task, see the base;
# 0.461 M parameters, 22.24 GFLOPs; no dispatch).
# Paper (Table 3): 78.1 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=50)), head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='svhn'))
val_dataloader = dict(dataset=dict(task='svhn'))
test_dataloader = val_dataloader
