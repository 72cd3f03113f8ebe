# VTAB-1K sun397: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 54.8 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=397))
train_dataloader = dict(dataset=dict(task='sun397'))
val_dataloader = dict(dataset=dict(task='sun397'))
test_dataloader = val_dataloader
