# The video demo (`make demo-video`, tools/demo/video_demo.py): a tiny DyT video model learns how
# a shape moves in real mp4 clips (dyt_mm.demo.video_clips: 24 frames of 32 x 32; still,
# horizontal, vertical or diagonal; one frame alone cannot tell them apart). The architecture of
# the ViT-B/16 configs, made small: embed 64, depth 4, patch 8 (16 tokens per frame), 8 frames
# 2 apart, adapter d = 16. No pre-trained frame ViT can be downloaded here, so the frozen base is
# a randomly initialised one (seeded): what is learnt lives in the adapters, dispatchers, query
# head and classifier.
_base_ = ['../_dyt_vit-b16-in21k_8f.py']

data_root = 'data/moving_shapes'
dataset_type = 'CheckedVideoDataset'
num_classes = 4
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, depth=4, num_heads=4),
        img_size=32,
        patch_size=8,
        adapter=dict(bottleneck=16, scale=1.0, dropout=0.0),
        init_cfg=None),
    cls_head=dict(num_classes=num_classes, in_channels=64, num_heads=4, topk=(1, )))

# Every clip is generated: one too short for the sampler is a bug, so it is an error.
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='CheckVideoLength', on_short='error'),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='CheckVideoLength', on_short='error'),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# 1 spatial x 3 temporal views, as for Kinetics-400; the head averages their logits.
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=3, test_mode=True),
    dict(type='CheckVideoLength', on_short='error'),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        data_root=data_root,
        ann_file='train_list_videos.txt',
        data_prefix=dict(video='videos/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=30,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        data_root=data_root,
        ann_file='val_list_videos.txt',
        data_prefix=dict(video='videos/val'),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=10,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        data_root=data_root,
        ann_file='val_list_videos.txt',
        data_prefix=dict(video='videos/val'),
        pipeline=test_pipeline,
        test_mode=True))
val_evaluator = dict(type='AccMetric', metric_options=dict(top_k_accuracy=dict(topk=(1, ))))
test_evaluator = val_evaluator

# 480 training clips / 16 = 30 iterations per epoch; a few CPU minutes in all.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=6e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=1, end=20,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=5)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    # every 5 epochs, the last two kept: a killed run resumes instead of restarting
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2, save_last=True,
                    save_best=None))
randomness = dict(seed=0, deterministic=False)
