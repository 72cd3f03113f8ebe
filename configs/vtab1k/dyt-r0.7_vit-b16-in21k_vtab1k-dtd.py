# VTAB-1K dtd: DyT r = 0.7, d = 8. Paper (Table 3): 73.6 top-1.
_base_ = '../_base_/vtab1k_dyt_vit-b16.py'

model = dict(head=dict(num_classes=47), dyt_loss=dict(target_rate=0.7))
train_dataloader = dict(dataset=dict(task='dtd'))
val_dataloader = dict(dataset=dict(task='dtd'))
test_dataloader = val_dataloader
