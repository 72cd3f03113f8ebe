# VTAB-1K smallnorb-elev: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 3): 19.2 top-1.
_base_ = '../_base_/vtab1k_linear-probe_vit-b16.py'

model = dict(head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
