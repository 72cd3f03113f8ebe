# VTAB-1K smallnorb-elev: DyT r = 0.5, d = 8. Paper (Table 3): 44.3 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=9), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
