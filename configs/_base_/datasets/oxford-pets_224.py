# mmpretrain's OxfordIIITPet; 37 classes.
_base_ = ['./complete_224.py']
dataset_type = 'OxfordIIITPet'
data_root = 'data/Oxford-IIIT_Pets'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
