# VTAB-1K eurosat: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 95.8 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
