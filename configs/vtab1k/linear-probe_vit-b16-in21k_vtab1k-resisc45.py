# VTAB-1K resisc45: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 68.6 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=45))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
