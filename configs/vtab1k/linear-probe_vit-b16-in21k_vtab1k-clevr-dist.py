# VTAB-1K clevr-dist: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 30.6 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = val_dataloader
