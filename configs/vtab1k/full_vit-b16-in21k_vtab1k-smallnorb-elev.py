# VTAB-1K smallnorb-elev: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 29.1 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
