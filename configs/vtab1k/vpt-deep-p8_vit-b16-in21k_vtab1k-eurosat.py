# VTAB-1K eurosat: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 96.1 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
