# VTAB-1K cifar100: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 63.4 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=100))
train_dataloader = dict(dataset=dict(task='cifar'))
val_dataloader = dict(dataset=dict(task='cifar'))
test_dataloader = val_dataloader
