# DyT on a frozen ViT-B/16 (ImageNet-21K, converted with tools/convert/timm_vit_to_dyt.py) for
# 8-frame clips at 224 x 224 (paper App. A.8, video): every frame goes through the ViT on its own
# (own class token, own token dispatch); one learnable query cross-attends to the tokens of all
# frames; a linear layer classifies. MLP dispatch, adapter d = 64, r = 0.5, AdamW with base lr
# 1e-3 scaled by batch / 256, weight decay 0.01. The data set config that uses this file sets the
# classes, the pipelines and the schedule (cosine after 2 warm-up epochs; 12 or 50 epochs).
_base_ = ['../_base_/video_runtime.py']

model = dict(
    type='DyTRecognizer3D',
    # the IN-21K ViT was trained on inputs scaled to [-1, 1]; decord gives RGB frames
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, format_shape='NCTHW'),
    backbone=dict(
        type='DyTVideoViT',
        arch='base',
        img_size=224,
        patch_size=16,
        num_frames=8,
        variant='mlp',
        drop_path_rate=0.0,
        # dropout 0.1 and the fixed output scale 0.1 are the official code's (not in the paper)
        adapter=dict(type='Adapter', bottleneck=64, scale=0.1, dropout=0.1),
        dispatch=dict(tau=5.0, threshold=0.5),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-b16-in21k_dyt.pth')),
    cls_head=dict(
        type='TemporalQueryHead',
        num_classes=400,
        in_channels=768,
        num_heads=12,
        loss_cls=dict(type='CrossEntropyLoss'),
        average_clips='score'),  # the views' logits are averaged, as in the paper
    # L = L_cls + L'_cls + L_distill + 2 L_rate, r = 0.5
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0))

# Batch 128 = 8 GPUs x 16 clips (train_dataloader.batch_size below), so
# lr = 1e-3 * 128 / 256; `tools/train.py --auto-scale-lr` rescales it for another total batch.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3 * 128 / 256, weight_decay=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=128)
# The data set configs fill in the classes, lists, folders and pipelines; the list is checked up
# front (CheckedVideoDataset: a missing file or a label outside the classes is an error).
dataset_type = 'CheckedVideoDataset'
train_dataloader = dict(
    batch_size=16,  # x 8 GPUs = 128
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, test_mode=True))
test_dataloader = dict(
    batch_size=4,  # x 3 views
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, test_mode=True))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
