# VTAB-1K smallnorb-elev: DyT r = 0.7, d = 8. Paper (Table 3): 45.9 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=9), dyt_loss=dict(target_rate=0.7))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
