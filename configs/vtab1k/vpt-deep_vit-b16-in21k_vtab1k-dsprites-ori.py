# VTAB-1K dsprites-ori: VPT-deep, 100 prompts per layer (VPT's length for this task, see the base;
# 0.922 M parameters, 27.00 GFLOPs; no dispatch).
# Paper (Table 3): 47.9 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=100)), head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_ori'))
val_dataloader = dict(dataset=dict(task='dsprites_ori'))
test_dataloader = val_dataloader
