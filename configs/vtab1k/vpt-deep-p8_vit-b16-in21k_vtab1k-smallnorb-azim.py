# VTAB-1K smallnorb-azim: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 32.9 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=18))
train_dataloader = dict(dataset=dict(task='smallnorb_azi'))
val_dataloader = dict(dataset=dict(task='smallnorb_azi'))
test_dataloader = val_dataloader
