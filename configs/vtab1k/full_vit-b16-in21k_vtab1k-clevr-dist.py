# VTAB-1K clevr-dist: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 58.6 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = val_dataloader
