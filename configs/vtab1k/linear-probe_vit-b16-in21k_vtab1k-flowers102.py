# VTAB-1K flowers102: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 97.0 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='oxford_flowers102'))
val_dataloader = dict(dataset=dict(task='oxford_flowers102'))
test_dataloader = val_dataloader
