# VTAB-1K pets: DyT r = 0.5, d = 8 on ViT-L/16 IN-21K. Paper (Table 19): 92.6 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-l16.py'

model = dict(head=dict(num_classes=37), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
