# VTAB-1K svhn: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 87.4 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='svhn'))
val_dataloader = dict(dataset=dict(task='svhn'))
test_dataloader = val_dataloader
