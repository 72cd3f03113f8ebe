# VTAB-1K clevr-count: VPT-deep, 100 prompts per layer (VPT's length for this task, see the base;
# 0.922 M parameters, 27.00 GFLOPs; no dispatch).
# Paper (Table 3): 68.5 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=100)), head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
