# VTAB-1K pets: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 88.3 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=37))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
