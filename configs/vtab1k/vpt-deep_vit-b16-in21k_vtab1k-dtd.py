# VTAB-1K dtd: VPT-deep, 10 prompts per layer (VPT's length for this task, see the base;
# 0.092 M parameters, 18.51 GFLOPs; no dispatch).
# Paper (Table 3): 65.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=10)), head=dict(num_classes=47))
train_dataloader = dict(dataset=dict(task='dtd'))
val_dataloader = dict(dataset=dict(task='dtd'))
test_dataloader = val_dataloader
