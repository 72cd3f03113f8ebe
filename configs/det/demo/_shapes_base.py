# Shared by the two stages of the detection demo: a tiny ViTDet-style Mask R-CNN (ViT embed 96,
# depth 4, patch 8, window attention in blocks 0 and 2, global in 1 and 3; 128 x 128 inputs) on
# the generated shapes of dyt_mm.demo.det_shapes (COCO format, one folder per domain), evaluated
# with mmdet's CocoMetric (box and mask mAP, pycocotools).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../../_base_/det_runtime.py']

data_root = 'data/det_shapes'
image_size = (128, 128)
classes = ('disc', 'square', 'triangle', 'cross')
norm_cfg = dict(type='LN2d', requires_grad=True)
model = dict(
    type='DyTMaskRCNN',
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, pad_size_divisor=image_size[0]),
    backbone=dict(
        _delete_=True,
        type='DyTDetViT',
        arch=dict(embed_dims=96, depth=4, num_heads=3),
        img_size=image_size,
        patch_size=8,
        window_size=8,
        global_blocks=(1, 3)),
    # stride-8 map -> strides 4, 8, 16 (+ a pooled 32 for the RPN)
    neck=dict(_delete_=True, type='SimpleFeaturePyramid', in_channels=96, out_channels=64,
              scale_factors=(2.0, 1.0, 0.5), num_outs=4),
    rpn_head=dict(
        in_channels=64, feat_channels=64, num_convs=2,
        anchor_generator=dict(scales=[4], strides=[4, 8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[4, 8, 16]),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=64, featmap_strides=[4, 8, 16]),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64, norm_cfg=norm_cfg,
                       num_classes=len(classes))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=10)))

# mmdet's COCO pipelines at 128 px (ViTDet's: resize the long side, pad to a square, so every
# input has the same token grid); CheckedCocoDataset names any bad annotation.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.0), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=dict(img=(127, 127, 127))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(127, 127, 127))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
shapes_dataset = dict(type='CheckedCocoDataset', data_root=data_root,
                      metainfo=dict(classes=classes))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        shapes_dataset, ann_file='target/annotations/instances_train.json',
        data_prefix=dict(img='target/train/'), filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        shapes_dataset, ann_file='target/annotations/instances_val.json',
        data_prefix=dict(img='target/val/'), test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'], format_only=False,
                     ann_file=data_root + '/target/annotations/instances_val.json')
test_evaluator = val_evaluator

# AdamW as ViTDet, lr 1e-3 (DyT's PEFT rate), short warm-up, then linear decay to zero.
max_iters = 200
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
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    # every 100 iterations, the last two kept: a killed run resumes instead of restarting
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2,
                    save_last=True),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
