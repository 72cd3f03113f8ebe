# VTAB-1K dsprites-loc: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 73.6 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
