# VTAB-1K flowers102: DyT r = 0.9, d = 8. Paper (Table 3): 99.2 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=102), dyt_loss=dict(target_rate=0.9))
train_dataloader = dict(dataset=dict(task='oxford_flowers102'))
val_dataloader = dict(dataset=dict(task='oxford_flowers102'))
test_dataloader = val_dataloader
