# DyT (MLP dispatch, d = 64, r = 0.5) on Kinetics-400: 8 frames 16 apart, short side jittered in
# 224-256 then a random 224 crop and flips, 12 epochs; test on 1 spatial x 3 temporal views.
# mmaction's VideoDataset list format, with the list checked up front (CheckedVideoDataset).
# Paper (Table 6): 75.28 top-1, 108.31 GFLOPs per 8-frame clip.
_base_ = ['./_dyt_vit-b16-in21k_8f.py']

data_root = 'data/kinetics400'
num_classes = 400
model = dict(cls_head=dict(num_classes=num_classes))
# K400 has the odd clip shorter than the 113 frames a view spans: mmaction loops it; say so.
check_length = dict(type='CheckVideoLength', on_short='warn')
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=16, num_clips=1),
    check_length,
    dict(type='DecordDecode'),
    dict(type='RandomRescale', scale_range=(224, 256)),
    dict(type='RandomCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=16, num_clips=1, test_mode=True),
    check_length,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=16, num_clips=3, test_mode=True),
    check_length,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    dataset=dict(
        num_classes=num_classes,
        ann_file=f'{data_root}/kinetics400_train_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos_train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        num_classes=num_classes,
        ann_file=f'{data_root}/kinetics400_val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos_val'),
        pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(
        num_classes=num_classes,
        ann_file=f'{data_root}/kinetics400_val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos_val'),
        pipeline=test_pipeline))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=2, end=12,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_begin=1, val_interval=1)
