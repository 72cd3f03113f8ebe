# VTAB-1K flowers102: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 97.2 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='oxford_flowers102'))
val_dataloader = dict(dataset=dict(task='oxford_flowers102'))
test_dataloader = val_dataloader
