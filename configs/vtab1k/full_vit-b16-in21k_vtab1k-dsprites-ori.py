# VTAB-1K dsprites-ori: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 46.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_ori'))
val_dataloader = dict(dataset=dict(task='dsprites_ori'))
test_dataloader = val_dataloader
