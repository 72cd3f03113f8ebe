# VTAB-1K dsprites-ori: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 45.7 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_ori'))
val_dataloader = dict(dataset=dict(task='dsprites_ori'))
test_dataloader = val_dataloader
