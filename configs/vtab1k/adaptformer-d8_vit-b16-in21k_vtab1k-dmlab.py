# VTAB-1K dmlab: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 49.3 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='dmlab'))
val_dataloader = dict(dataset=dict(task='dmlab'))
test_dataloader = val_dataloader
