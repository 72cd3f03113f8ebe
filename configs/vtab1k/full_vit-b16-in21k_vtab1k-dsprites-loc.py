# VTAB-1K dsprites-loc: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 57.5 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
