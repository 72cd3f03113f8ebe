# VTAB-1K camelyon: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 78.5 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=2))
train_dataloader = dict(dataset=dict(task='patch_camelyon'))
val_dataloader = dict(dataset=dict(task='patch_camelyon'))
test_dataloader = val_dataloader
