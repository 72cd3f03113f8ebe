# DyT (MLP dispatch, d = 128, r = 0.5) ViTDet-style Mask R-CNN on COCO, 12 epochs, on mmdet's own
# bases: the Mask R-CNN model, CocoDataset with its instance pipelines, CocoMetric (pycocotools)
# and the 1x schedule. Paper (Table 11): 39.78 box mAP, 36.11 mask mAP, 468.40 GFLOPs (backbone +
# FPN, 1024 x 1024).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/det_runtime.py'
]
image_size = (1024, 1024)
norm_cfg = dict(type='LN2d', requires_grad=True)
model = dict(
    type='DyTMaskRCNN',
    # the IN-21K ViT was trained on inputs scaled to [-1, 1]; every input is padded to 1024
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, pad_size_divisor=1024),
    backbone=dict(
        _delete_=True,
        type='DyTDetViT',
        arch='base',
        img_size=image_size,
        # as ViTDet, the position embeddings stay on the 14 x 14 pre-training grid and are
        # resized to the 64 x 64 input grid in every forward (full tuning trains that table)
        pretrain_img_size=224,
        patch_size=16,
        # ViTDet's layout: 14 x 14 windows, global attention in blocks 2, 5, 8, 11, and
        # decomposed relative positions in every block (new tables, zero at first, trained)
        window_size=14,
        global_blocks=(2, 5, 8, 11),
        rel_pos=True,
        drop_path_rate=0.1,
        # d = 128 for detection (paper App. A.8); dropout and scale as the official DyT code
        adapter=dict(type='Adapter', bottleneck=128, scale=0.1, dropout=0.1),
        dispatch=dict(tau=5.0, threshold=0.5),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-b16-in21k_dyt.pth')),
    # ViTDet's simple feature pyramid: the stride-16 map to strides 4, 8, 16, 32 (+ 64 pooled)
    neck=dict(_delete_=True, type='SimpleFeaturePyramid', in_channels=768, out_channels=256,
              scale_factors=(4.0, 2.0, 1.0, 0.5), num_outs=5),
    # ViTDet's heads: two RPN convs, 4 conv + 1 fc box head and mask head with LayerNorm
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256,
                       norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)),
    # L = detection losses + complete-model detection losses + RoI-class KL + 2 L_rate, r = 0.5
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0))

# ViTDet's large-scale jitter, shortened to the paper's 12 epochs; inputs padded to 1024 x 1024
# so that every image has the same 64 x 64 token grid (and windows).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# CheckedCocoDataset: mmdet's CocoDataset that names the file and annotation of a box outside
# its image or of an unknown category id instead of skipping it silently.
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = 16
    dataset=dict(type='CheckedCocoDataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader

# The paper does not state the detection optimiser. DyT's other dense task (segmentation) and
# its PEFT baselines use AdamW lr 1e-3; ViTDet trains with AdamW, weight decay 0.1, and steps
# the rate down at epochs 8 and 11 of a 1x schedule (mmdet's schedule_1x: 500 warm-up iters).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1))
auto_scale_lr = dict(enable=False, base_batch_size=16)
