# mmpretrain's Food101; 101 classes.
_base_ = ['./complete_224.py']
dataset_type = 'Food101'
data_root = 'data/food-101'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
