# VTAB-1K dsprites-ori: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 20.0 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_ori'))
val_dataloader = dict(dataset=dict(task='dsprites_ori'))
test_dataloader = val_dataloader
