# VTAB-1K sun397: DyT r = 0.9, d = 8. Paper (Table 3): 57.1 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=397), dyt_loss=dict(target_rate=0.9))
train_dataloader = dict(dataset=dict(task='sun397'))
val_dataloader = dict(dataset=dict(task='sun397'))
test_dataloader = val_dataloader
