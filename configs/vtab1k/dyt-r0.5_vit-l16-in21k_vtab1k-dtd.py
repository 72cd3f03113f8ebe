# VTAB-1K dtd: DyT r = 0.5, d = 8 on ViT-L/16 IN-21K. Paper (Table 19): 74.5 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-l16.py'

model = dict(head=dict(num_classes=47), dyt_loss=dict(target_rate=0.5))
train_dataloader = dict(dataset=dict(task='dtd'))
val_dataloader = dict(dataset=dict(task='dtd'))
test_dataloader = val_dataloader
