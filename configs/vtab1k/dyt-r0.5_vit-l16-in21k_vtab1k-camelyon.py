# VTAB-1K camelyon: DyT r = 0.5, d = 8 on ViT-L/16 IN-21K. Paper (Table 19): 86.9 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-l16.py'

model = dict(head=dict(num_classes=2), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='patch_camelyon'))
val_dataloader = dict(dataset=dict(task='patch_camelyon'))
test_dataloader = val_dataloader
