# CIFAR-100, DyT (d = 64, r = 0.5) with token-level random dispatch: each image token enters the
# MLP with probability 0.5, nothing learned.
# Paper (Table 7): 89.38 top-1.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'

model = dict(backbone=dict(dispatch=dict(_delete_=True, type='RandomDispatcher', rate=0.5)))
# The rate loss has no gradient here (nothing is learned); it is kept as a log of the keep rate.
