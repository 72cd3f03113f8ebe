# CIFAR-100, DyT (d = 64, r = 0.5) with sample-level learned dispatch: one gate decision per
# image, read from its pooled tokens; sparse inference skips the whole image's MLP.
# Paper (Table 7): 90.7 top-1.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'

model = dict(backbone=dict(dispatch=dict(type='SampleDispatcher')))
