# VTAB-1K caltech101: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 90.8 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
