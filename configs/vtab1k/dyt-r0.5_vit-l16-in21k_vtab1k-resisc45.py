# VTAB-1K resisc45: DyT r = 0.5, d = 8 on ViT-L/16 IN-21K. Paper (Table 19): 87.2 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-l16.py'

model = dict(head=dict(num_classes=45), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
