# VTAB-1K eurosat: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 95.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
