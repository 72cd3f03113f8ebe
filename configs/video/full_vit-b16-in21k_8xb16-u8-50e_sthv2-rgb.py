# Something-Something V2, 8 frames: full tuning (every parameter trains; no adapter, no
# dispatch).
# Paper (Table 6): 45.22 top-1, 142.53 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
# Full-tuning baselines use 1/10 of the base lr (paper App. A.8).
optim_wrapper = dict(optimizer=dict(lr=1e-3 * 128 / 256 / 10))
