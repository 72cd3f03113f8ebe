# VTAB-1K caltech101: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 85.0 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
