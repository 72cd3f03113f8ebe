# mmpretrain's FGVCAircraft (variants); 100 classes.
_base_ = ['./complete_224.py']
dataset_type = 'FGVCAircraft'
data_root = 'data/fgvc_aircraft'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
