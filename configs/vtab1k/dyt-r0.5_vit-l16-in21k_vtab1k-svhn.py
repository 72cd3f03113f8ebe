# VTAB-1K svhn: DyT r = 0.5, d = 8 on ViT-L/16 IN-21K. Paper (Table 19): 90.8 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-l16.py'

model = dict(head=dict(num_classes=10), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='svhn'))
val_dataloader = dict(dataset=dict(task='svhn'))
test_dataloader = val_dataloader
