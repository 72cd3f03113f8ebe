# VTAB-1K clevr-dist: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 60.0 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = val_dataloader
