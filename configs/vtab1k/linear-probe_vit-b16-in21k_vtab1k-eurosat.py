# VTAB-1K eurosat: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 87.5 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
