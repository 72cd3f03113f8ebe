# Shared by the two stages of the segmentation demo: a tiny UperNet (ViT embed 128, depth 4,
# patch 8, 64 x 64 crops) on the generated shapes of dyt_mm.demo.seg_shapes (ADE20K layout,
# one folder per domain), evaluated with mmseg's IoUMetric on sliding-window inference.
_base_ = ['../../_base_/seg_runtime.py']

data_root = 'data/seg_shapes'
crop_size = (64, 64)
num_classes = 5
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='DyTEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True,
        pad_val=0, seg_pad_val=255, size=crop_size),
    backbone=dict(
        type='DyTSegViT',
        arch=dict(embed_dims=128, depth=4, num_heads=4),
        img_size=crop_size,
        patch_size=8,
        out_indices=(0, 1, 2, 3)),
    neck=dict(type='ViTFeaturePyramid', embed_dims=128, rescales=(4, 2, 1, 0.5)),
    decode_head=dict(
        type='UPerHead', in_channels=[128] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
        channels=64, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead', in_channels=128, in_index=2, channels=32, num_convs=1,
        concat_input=False, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(48, 48)))

# mmseg's generic data set class with ADE20K's conventions: .jpg images, .png label maps,
# 0 = not labelled (reduce_zero_label). LoadCheckedAnnotations names any bad label map.
shapes_dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=('background', 'disc', 'square', 'triangle', 'cross'),
                  palette=[[120, 120, 120], [220, 20, 60], [0, 128, 255], [255, 200, 0],
                           [60, 180, 75]]),
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_pipeline = [
    dict(type='LoadCheckedImage'),
    dict(type='LoadCheckedAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    # mmseg's name: MMSegInferencer swaps the step named LoadImageFromFile for its own loader
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadCheckedAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        shapes_dataset,
        data_prefix=dict(img_path='target/images/training',
                         seg_map_path='target/annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        shapes_dataset,
        data_prefix=dict(img_path='target/images/validation',
                         seg_map_path='target/annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# The paper's optimiser (AdamW, lr 1e-3, weight decay 0.05) on a short warm-up + poly schedule.
max_iters = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=20, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every 100 iterations, the last two kept: a killed run resumes instead of restarting
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'))
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
