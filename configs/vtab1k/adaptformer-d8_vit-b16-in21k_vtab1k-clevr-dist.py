# VTAB-1K clevr-dist: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 64.3 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = val_dataloader
