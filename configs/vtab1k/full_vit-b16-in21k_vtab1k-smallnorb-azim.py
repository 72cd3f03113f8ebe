# VTAB-1K smallnorb-azim: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 25.7 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=18))
train_dataloader = dict(dataset=dict(task='smallnorb_azi'))
val_dataloader = dict(dataset=dict(task='smallnorb_azi'))
test_dataloader = val_dataloader
