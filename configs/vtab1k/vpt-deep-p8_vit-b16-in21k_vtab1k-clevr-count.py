# VTAB-1K clevr-count: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 68.5 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
