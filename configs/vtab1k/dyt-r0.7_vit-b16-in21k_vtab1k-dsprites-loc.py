# VTAB-1K dsprites-loc: DyT r = 0.7, d = 8. Paper (Table 3): 85.7 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=16), dyt_loss=dict(target_rate=0.7))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
