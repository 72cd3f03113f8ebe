# VTAB-1K dsprites-loc: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 12.5 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
