# VTAB-1K pets: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 90.9 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=37))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
