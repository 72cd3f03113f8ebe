# VTAB-1K smallnorb-elev: VPT-deep, 200 prompts per layer (VPT's length for this task, see the base;
# 1.843 M parameters, 36.78 GFLOPs; no dispatch).
# Paper (Table 3): 37.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep_vit-b16.py'

model = dict(backbone=dict(adapter=dict(num_prompts=200)), head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
