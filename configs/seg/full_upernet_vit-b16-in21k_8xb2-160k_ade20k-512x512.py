# UperNet on ADE20K (160k iterations, 512 x 512 crops): full tuning (every parameter trains; no
# adapter, no dispatch).
# Paper (Table 10): 47.66 mIoU, 605.36 GFLOPs.
_base_ = './dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
# Full-tuning baselines use 1/10 of the base lr (paper App. A.8).
optim_wrapper = dict(optimizer=dict(lr=1e-3 / 10))
