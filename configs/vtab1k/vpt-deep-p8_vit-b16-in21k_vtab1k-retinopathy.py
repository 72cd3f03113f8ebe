# VTAB-1K retinopathy: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 3): 68.4 top-1.
_base_ = '../_base_/vtab1k_vpt-deep-p8_vit-b16.py'

model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
