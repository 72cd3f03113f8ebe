# VTAB-1K dmlab: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 41.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='dmlab'))
val_dataloader = dict(dataset=dict(task='dmlab'))
test_dataloader = val_dataloader
