# mmpretrain's StanfordCars; 196 classes.
_base_ = ['./complete_224.py']
dataset_type = 'StanfordCars'
data_root = 'data/stanfordcars'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
