# VTAB-1K dtd: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 63.2 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=47))
train_dataloader = dict(dataset=dict(task='dtd'))
val_dataloader = dict(dataset=dict(task='dtd'))
test_dataloader = val_dataloader
