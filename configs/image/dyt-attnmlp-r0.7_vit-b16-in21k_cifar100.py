# attn_mlp dispatch, r = 0.7 (Table 1 matches FLOPs this way). Paper: 90.03 top-1 on CIFAR-100.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'
model = dict(backbone=dict(variant='attn_mlp'), dyt_loss=dict(target_rate=0.7))
