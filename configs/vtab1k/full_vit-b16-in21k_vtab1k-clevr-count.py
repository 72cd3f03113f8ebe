# VTAB-1K clevr-count: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 3): 56.3 top-1.
_base_ = '../_base_/vtab1k_full_vit-b16.py'

model = dict(head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
