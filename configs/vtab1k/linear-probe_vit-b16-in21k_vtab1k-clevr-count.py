# VTAB-1K clevr-count: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 34.3 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
