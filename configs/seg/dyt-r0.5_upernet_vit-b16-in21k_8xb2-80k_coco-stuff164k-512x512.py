# DyT (MLP dispatch, d = 64, r = 0.5) UperNet on COCO-Stuff-164k (171 classes), 80k iterations,
# 512 x 512 crops, with mmseg's own COCOStuffDataset and pipelines. Paper (Table 10): 45.63 mIoU.
_base_ = [
    './_dyt-upernet_vit-b16-in21k_512x512-160k.py', 'mmseg::_base_/datasets/coco-stuff164k.py'
]
model = dict(decode_head=dict(num_classes=171), auxiliary_head=dict(num_classes=171))
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
# the same schedule over 80k iterations (mmseg's schedule_80k intervals)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=80000),
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
