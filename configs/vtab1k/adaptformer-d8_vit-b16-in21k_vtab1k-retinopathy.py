# VTAB-1K retinopathy: AdaptFormer (DyT's parallel adapter, d = 8, in every layer; no dispatch).
# Paper (Table 3): 76.3 top-1.
_base_ = '../_base_/vtab1k_adaptformer-d8_vit-b16.py'

model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
