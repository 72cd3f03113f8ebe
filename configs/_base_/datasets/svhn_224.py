# dyt_mm's SVHN (train_32x32.mat / test_32x32.mat); the official code flips SVHN too; 10 classes.
_base_ = ['./complete_224_arrays.py']
dataset_type = 'SVHN'
data_root = 'data/svhn'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
