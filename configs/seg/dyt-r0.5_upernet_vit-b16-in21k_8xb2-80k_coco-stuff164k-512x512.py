# DyT (MLP dispatch, d = 64, r = 0.5) UperNet on COCO-Stuff-164k (171 classes), 80k iterations,
# 512 x 512 crops, with mmseg's own COCOStuffDataset and its pipelines (label maps checked).
# Paper (Table 10): 45.63 mIoU.
_base_ = [
    './_dyt-upernet_vit-b16-in21k_512x512-160k.py', 'mmseg::_base_/datasets/coco-stuff164k.py'
]
model = dict(decode_head=dict(num_classes=171), auxiliary_head=dict(num_classes=171))
# mmseg's COCO-Stuff pipelines with LoadCheckedAnnotations in place of LoadAnnotations: a missing
# or mis-sized label map, or a class index outside the 171 classes (other than 255), is an error
# naming the file instead of a failure later on. reduce_zero_label comes from the data set.
crop_size = (512, 512)
load_labels = dict(type='LoadCheckedAnnotations', num_classes=171)
train_pipeline = [
    dict(type='LoadCheckedImage'),
    load_labels,
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    # mmseg's name: MMSegInferencer swaps the step named LoadImageFromFile for its own loader
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    load_labels,  # after Resize: the labels are compared at the original size
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))  # x 8 GPUs = 16
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# the same schedule over 80k iterations (mmseg's schedule_80k intervals)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=80000),
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
