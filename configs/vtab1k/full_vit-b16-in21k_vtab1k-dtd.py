# VTAB-1K dtd: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 64.3 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=47))
train_dataloader = dict(dataset=dict(task='dtd'))
val_dataloader = dict(dataset=dict(task='dtd'))
test_dataloader = val_dataloader
