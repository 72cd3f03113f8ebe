# DyT (MLP dispatch, d = 64, r = 0.9) on a frozen Swin-B IN-22K, CIFAR100.
# Paper (Table 17): 92.31 top-1, 15.23 GFLOPs (dense Swin-B: 15.40).
_base_ = [
    '../_base_/models/dyt_swin-b-in22k.py', '../_base_/datasets/cifar100_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=100), dyt_loss=dict(target_rate=0.9))
