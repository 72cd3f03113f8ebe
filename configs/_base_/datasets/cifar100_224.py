# mmpretrain's CIFAR100 (python pickles); 100 classes.
_base_ = ['./complete_224_arrays.py']
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
