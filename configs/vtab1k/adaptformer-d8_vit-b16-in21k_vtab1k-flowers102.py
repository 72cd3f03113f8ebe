# VTAB-1K flowers102: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 99.1 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='oxford_flowers102'))
val_dataloader = dict(dataset=dict(task='oxford_flowers102'))
test_dataloader = val_dataloader
