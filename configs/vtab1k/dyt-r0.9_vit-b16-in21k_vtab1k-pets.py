# VTAB-1K pets: DyT r = 0.9, d = 8. Paper (Table 3): 91.4 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=37), dyt_loss=dict(target_rate=0.9))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
