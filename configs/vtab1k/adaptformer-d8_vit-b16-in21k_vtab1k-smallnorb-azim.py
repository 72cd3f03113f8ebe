# VTAB-1K smallnorb-azim: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no
# dispatch).
# Paper (Table 3): 31.7 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=18))
train_dataloader = dict(dataset=dict(task='smallnorb_azi'))
val_dataloader = dict(dataset=dict(task='smallnorb_azi'))
test_dataloader = val_dataloader
