# Shared by the two stages of the digits demo: a small ViT (embed 192, depth 6, patch 4) on
# 32 x 32 images written by dyt_mm.demo.digits (scikit-learn's real handwritten digits).
_base_ = ['../_base_/cls_runtime.py']

data_root = 'data/digits'
vit = dict(arch=dict(embed_dims=192, depth=6, num_heads=3), img_size=32, patch_size=4)
model = dict(
    type='DyTImageClassifier',
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True, num_classes=10),
    backbone=dict(type='DyTVisionTransformer', **vit),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=192,
              loss=dict(type='CrossEntropyLoss'),
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)))

pipeline = [dict(type='LoadCheckedImage'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='source/train',
                 pipeline=pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='source/val',
                 pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
val_cfg = dict()
test_cfg = dict()

# Checkpoints every 5 epochs, the last two kept: a killed run resumes (--resume) instead
# of starting over.
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                                     save_last=True))
randomness = dict(seed=0, deterministic=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
