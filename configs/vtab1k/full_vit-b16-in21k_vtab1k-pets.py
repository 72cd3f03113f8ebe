# VTAB-1K pets: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 86.9 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=37))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
