# VTAB-1K cifar100: DyT r = 0.5, d = 8 (the paper's VTAB-1K setting) on OpenAI CLIP-B/16.
_base_ = [
    '../_base_/models/dyt_clip-b16-openai.py', '../_base_/datasets/vtab1k-cifar100.py',
    '../_base_/schedules/vtab1k_100e.py', '../_base_/cls_runtime.py'
]
model = dict(backbone=dict(adapter=dict(bottleneck=8, scale=1.0)), head=dict(num_classes=100),
             dyt_loss=dict(target_rate=0.5))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                                     save_best='auto'))  # as the paper's VTAB-1K configs
