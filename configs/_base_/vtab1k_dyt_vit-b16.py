# Everything a VTAB-1K task config shares: DyT on ViT-B/16 IN-21K with d = 8 (paper, Table 3),
# adapter scale 1 (official NeurIPS code), resize 224 without augmentation, 100 epochs.
# A task config sets the task folder, its number of classes and r.
_base_ = [
    './models/dyt_vit-b16.py', './datasets/vtab1k.py', './schedules/vtab1k_100e.py',
    './cls_runtime.py'
]
model = dict(backbone=dict(adapter=dict(bottleneck=8, scale=1.0)))
# The official code keeps the best test accuracy over epochs; we save the last and the best.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                                     save_best='auto'))
