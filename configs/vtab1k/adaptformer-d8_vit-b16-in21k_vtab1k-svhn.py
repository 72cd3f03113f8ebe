# VTAB-1K svhn: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 86.6 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='svhn'))
val_dataloader = dict(dataset=dict(task='svhn'))
test_dataloader = val_dataloader
