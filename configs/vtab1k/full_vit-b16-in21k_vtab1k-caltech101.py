# VTAB-1K caltech101: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 87.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
