# DyT (MLP dispatch, d = 64, r = 0.1) on a frozen Swin-B IN-22K, Food101.
# Paper (Table 17): 89.84 top-1, 10.72 GFLOPs (dense Swin-B: 15.40).
_base_ = [
    '../_base_/models/dyt_swin-b-in22k.py', '../_base_/datasets/food101_224.py',
    '../_base_/schedules/complete_100e.py', '../_base_/cls_runtime.py'
]
model = dict(head=dict(num_classes=101), dyt_loss=dict(target_rate=0.1))
