# DyT (MLP dispatch, d = 64, r = 0.7) on ViT-L/16 IN-21K, SVHN.
# Paper (Table 18): 97.25 top-1 at 51.11 GFLOPs (full tuning: 61.60).
_base_ = [
    '../_base_/models/dyt_vit-l16.py', '../_base_/datasets/svhn_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=10), dyt_loss=dict(target_rate=0.7))
