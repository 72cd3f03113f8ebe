# layer dispatch, r = 0.7 (Table 1 matches FLOPs this way). Paper: 89.38 top-1 on CIFAR-100.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'
model = dict(backbone=dict(variant='layer'), dyt_loss=dict(target_rate=0.7))
