# VTAB-1K resisc45: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 83.4 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=45))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
