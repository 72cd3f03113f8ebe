# VTAB-1K pets: VPT-deep, 1 prompt per layer (VPT's length for this task, see the base;
# 0.009 M parameters, 17.67 GFLOPs; no dispatch).
# Paper (Table 3): 88.3 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=1)), head=dict(num_classes=37))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
