# DyT (MLP dispatch, d = 64, r = 0.9) on ViT-L/16 IN-21K, CIFAR-100.
# Paper (Table 18): 93.44 top-1 at 60.05 GFLOPs (full tuning: 61.60).
_base_ = [
    '../_base_/models/dyt_vit-l16.py', '../_base_/datasets/cifar100_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=100), dyt_loss=dict(target_rate=0.9))
