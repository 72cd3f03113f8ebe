# VTAB-1K retinopathy: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 74.0 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
