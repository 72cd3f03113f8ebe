# DyT (MLP dispatch, d = 64, r = 0.5) on CIFAR100, on EVA-02-B/16 (CLIP).
_base_ = [
    '../_base_/models/dyt_eva02-b16-clip.py', '../_base_/datasets/cifar100_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=100))
