# VTAB-1K resisc45: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 84.2 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=45))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
