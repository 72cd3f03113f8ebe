# VTAB-1K dsprites-loc: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 76.3 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
