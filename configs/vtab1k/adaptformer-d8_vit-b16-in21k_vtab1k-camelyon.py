# VTAB-1K camelyon: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 83.0 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=2))
train_dataloader = dict(dataset=dict(task='patch_camelyon'))
val_dataloader = dict(dataset=dict(task='patch_camelyon'))
test_dataloader = val_dataloader
