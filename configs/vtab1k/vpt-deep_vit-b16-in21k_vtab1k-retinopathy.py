# VTAB-1K retinopathy: VPT-deep, 1 prompt per layer (VPT's length for this task, see the base;
# 0.009 M parameters, 17.67 GFLOPs; no dispatch).
# Paper (Table 3): 68.4 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=1)), head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
