# DyT (MLP dispatch, d = 64, r = 0.5) on CIFAR100, on OpenAI CLIP-B/16.
_base_ = [
    '../_base_/models/dyt_clip-b16-openai.py', '../_base_/datasets/cifar100_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=100))
