# VTAB-1K retinopathy: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 73.9 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
