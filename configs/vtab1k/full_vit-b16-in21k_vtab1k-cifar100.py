# VTAB-1K cifar100: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 68.9 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=100))
train_dataloader = dict(dataset=dict(task='cifar'))
val_dataloader = dict(dataset=dict(task='cifar'))
test_dataloader = val_dataloader
