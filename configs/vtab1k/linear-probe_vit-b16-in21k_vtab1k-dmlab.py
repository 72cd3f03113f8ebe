# VTAB-1K dmlab: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 33.2 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='dmlab'))
val_dataloader = dict(dataset=dict(task='dmlab'))
test_dataloader = val_dataloader
