# VTAB-1K camelyon: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 79.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=2))
train_dataloader = dict(dataset=dict(task='patch_camelyon'))
val_dataloader = dict(dataset=dict(task='patch_camelyon'))
test_dataloader = val_dataloader
