# Everything a ViT-L/16 VTAB-1K task config shares (paper, Table 19): DyT with d = 8 and the
# ViT-B/16 VTAB-1K recipe otherwise (adapter scale 1, resize 224 without augmentation, 100 epochs).
# A task config sets the task folder, its number of classes and r.
_base_ = [
    './models/dyt_vit-l16.py', './datasets/vtab1k.py', './schedules/vtab1k_100e.py',
    './cls_runtime.py'
]
model = dict(backbone=dict(adapter=dict(bottleneck=8, scale=1.0)))
# The official code keeps the best test accuracy over epochs; we save the last and the best.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                                     save_best='auto'))
