# VTAB-1K svhn: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 78.1 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='svhn'))
val_dataloader = dict(dataset=dict(task='svhn'))
test_dataloader = val_dataloader
