# VTAB-1K sun397: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 51.0 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=397))
train_dataloader = dict(dataset=dict(task='sun397'))
val_dataloader = dict(dataset=dict(task='sun397'))
test_dataloader = val_dataloader
