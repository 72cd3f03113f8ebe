# VTAB-1K CIFAR-100 (100 classes), for models other than the paper's: the paper's ViT-B/16
# task configs set the task themselves (configs/vtab1k/*_vit-b16-in21k_*).
_base_ = ['./vtab1k.py']
train_dataloader = dict(dataset=dict(task='cifar'))
val_dataloader = dict(dataset=dict(task='cifar'))
test_dataloader = val_dataloader
