# VTAB-1K resisc45: VPT-deep, 10 prompts per layer (VPT's length for this task, see the base;
# 0.092 M parameters, 18.51 GFLOPs; no dispatch).
# Paper (Table 3): 83.4 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=10)), head=dict(num_classes=45))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
