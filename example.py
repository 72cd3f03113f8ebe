crop_size = (
    64,
    64,
)
custom_hooks = [
    dict(save_trainable_only=True, tau=5.0, type='DyTHook'),
]
custom_imports = dict(
    allow_failed_imports=False, imports=[
        'dyt_mm.seg',
    ])
data_root = 'data/seg_shapes'
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False,
        interval=100,
        max_keep_ckpts=2,
        save_last=True,
        type='CheckpointHook'),
    logger=dict(interval=50, log_metric_by_epoch=False, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'))
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='gloo', timeout=1800),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=False)
max_iters = 400
model = dict(
    auxiliary_head=dict(
        align_corners=False,
        channels=32,
        concat_input=False,
        dropout_ratio=0.1,
        in_channels=128,
        in_index=2,
        loss_decode=dict(
            loss_weight=0.4, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='BN'),
        num_classes=5,
        num_convs=1,
        type='FCNHead'),
    backbone=dict(
        adapter=dict(bottleneck=16, dropout=0.1, scale=1.0),
        arch=dict(depth=4, embed_dims=128, num_heads=4),
        img_size=(
            64,
            64,
        ),
        init_cfg=dict(
            checkpoint='work_dirs/seg_demo/source_vit.pth', type='Pretrained'),
        out_indices=(
            0,
            1,
            2,
            3,
        ),
        patch_size=8,
        type='DyTSegViT'),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[
            127.5,
            127.5,
            127.5,
        ],
        pad_val=0,
        seg_pad_val=255,
        size=(
            64,
            64,
        ),
        std=[
            127.5,
            127.5,
            127.5,
        ],
        type='SegDataPreProcessor'),
    decode_head=dict(
        align_corners=False,
        channels=64,
        dropout_ratio=0.1,
        in_channels=[
            128,
            128,
            128,
            128,
        ],
        in_index=[
            0,
            1,
            2,
            3,
        ],
        loss_decode=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='BN'),
        num_classes=5,
        pool_scales=(
            1,
            2,
            3,
            6,
        ),
        type='UPerHead'),
    dyt_loss=dict(
        complete_weight=1.0,
        distill_weight=1.0,
        rate_weight=2.0,
        target_rate=0.5),
    neck=dict(
        embed_dims=128, rescales=(
            4,
            2,
            1,
            0.5,
        ), type='ViTFeaturePyramid'),
    test_cfg=dict(crop_size=(
        64,
        64,
    ), mode='slide', stride=(
        48,
        48,
    )),
    train_cfg=dict(),
    type='DyTEncoderDecoder')
norm_cfg = dict(requires_grad=True, type='BN')
num_classes = 5
optim_wrapper = dict(
    optimizer=dict(
        betas=(
            0.9,
            0.999,
        ), lr=0.001, type='AdamW', weight_decay=0.05),
    type='OptimWrapper')
param_scheduler = [
    dict(begin=0, by_epoch=False, end=20, start_factor=0.001, type='LinearLR'),
    dict(
        begin=20,
        by_epoch=False,
        end=400,
        eta_min=0.0,
        power=1.0,
        type='PolyLR'),
]
randomness = dict(seed=0)
resume = False
runner_type = 'DyTRunner'
shapes_dataset = dict(
    data_root='data/seg_shapes',
    img_suffix='.jpg',
    metainfo=dict(
        classes=(
            'background',
            'disc',
            'square',
            'triangle',
            'cross',
        ),
        palette=[
            [
                120,
                120,
                120,
            ],
            [
                220,
                20,
                60,
            ],
            [
                0,
                128,
                255,
            ],
            [
                255,
                200,
                0,
            ],
            [
                60,
                180,
                75,
            ],
        ]),
    reduce_zero_label=True,
    seg_map_suffix='.png',
    type='BaseSegDataset')
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=1,
    dataset=dict(
        data_prefix=dict(
            img_path='target/images/validation',
            seg_map_path='target/annotations/validation'),
        data_root='data/seg_shapes',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'disc',
                'square',
                'triangle',
                'cross',
            ),
            palette=[
                [
                    120,
                    120,
                    120,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
                [
                    60,
                    180,
                    75,
                ],
            ]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                128,
                64,
            ), type='Resize'),
            dict(num_classes=5, type='LoadCheckedAnnotations'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=True,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(keep_ratio=True, scale=(
        128,
        64,
    ), type='Resize'),
    dict(num_classes=5, type='LoadCheckedAnnotations'),
    dict(type='PackSegInputs'),
]
train_cfg = dict(max_iters=400, type='IterBasedTrainLoop', val_interval=400)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_prefix=dict(
            img_path='target/images/training',
            seg_map_path='target/annotations/training'),
        data_root='data/seg_shapes',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'disc',
                'square',
                'triangle',
                'cross',
            ),
            palette=[
                [
                    120,
                    120,
                    120,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
                [
                    60,
                    180,
                    75,
                ],
            ]),
        pipeline=[
            dict(type='LoadCheckedImage'),
            dict(num_classes=5, type='LoadCheckedAnnotations'),
            dict(
                keep_ratio=True,
                ratio_range=(
                    0.75,
                    1.5,
                ),
                scale=(
                    128,
                    64,
                ),
                type='RandomResize'),
            dict(cat_max_ratio=0.75, crop_size=(
                64,
                64,
            ), type='RandomCrop'),
            dict(prob=0.5, type='RandomFlip'),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=True,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
train_pipeline = [
    dict(type='LoadCheckedImage'),
    dict(num_classes=5, type='LoadCheckedAnnotations'),
    dict(
        keep_ratio=True,
        ratio_range=(
            0.75,
            1.5,
        ),
        scale=(
            128,
            64,
        ),
        type='RandomResize'),
    dict(cat_max_ratio=0.75, crop_size=(
        64,
        64,
    ), type='RandomCrop'),
    dict(prob=0.5, type='RandomFlip'),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
tta_model = dict(_scope_='mmseg', type='SegTTAModel')
val_cfg = dict(type='ValLoop')
val_dataloader = dict(
    batch_size=1,
    dataset=dict(
        data_prefix=dict(
            img_path='target/images/validation',
            seg_map_path='target/annotations/validation'),
        data_root='data/seg_shapes',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'disc',
                'square',
                'triangle',
                'cross',
            ),
            palette=[
                [
                    120,
                    120,
                    120,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
                [
                    60,
                    180,
                    75,
                ],
            ]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                128,
                64,
            ), type='Resize'),
            dict(num_classes=5, type='LoadCheckedAnnotations'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=True,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
vis_backends = [
    dict(_scope_='mmseg', type='LocalVisBackend'),
]
visualizer = dict(
    _scope_='mmseg',
    name='visualizer',
    type='SegLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
    ])
