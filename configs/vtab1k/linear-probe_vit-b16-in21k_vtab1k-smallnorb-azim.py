# VTAB-1K smallnorb-azim: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 9.6 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=18))
train_dataloader = dict(dataset=dict(task='smallnorb_azi'))
val_dataloader = dict(dataset=dict(task='smallnorb_azi'))
test_dataloader = val_dataloader
