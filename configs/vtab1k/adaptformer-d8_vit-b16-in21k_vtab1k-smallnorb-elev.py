# VTAB-1K smallnorb-elev: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no
# dispatch).
# Paper (Table 3): 41.1 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
