# VTAB-1K sun397: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 38.8 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=397))
train_dataloader = dict(dataset=dict(task='sun397'))
val_dataloader = dict(dataset=dict(task='sun397'))
test_dataloader = val_dataloader
