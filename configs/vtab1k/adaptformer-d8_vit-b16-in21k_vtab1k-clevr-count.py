# VTAB-1K clevr-count: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 81.9 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
