# VTAB-1K cifar100: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 70.8 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=100))
train_dataloader = dict(dataset=dict(task='cifar'))
val_dataloader = dict(dataset=dict(task='cifar'))
test_dataloader = val_dataloader
