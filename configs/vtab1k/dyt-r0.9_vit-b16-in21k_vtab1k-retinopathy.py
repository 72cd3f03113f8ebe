# VTAB-1K retinopathy: DyT r = 0.9, d = 8. Paper (Table 3): 76.0 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=5), dyt_loss=dict(target_rate=0.9))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
