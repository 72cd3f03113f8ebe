# VTAB-1K caltech101: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 91.2 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
