# VTAB-1K smallnorb-elev: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 37.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
