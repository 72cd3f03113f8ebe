# FGVC-Aircraft: full tuning (every parameter trains; no adapter, no dispatch).
# Paper (Table 6): 80.53 top-1, 17.58 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_fgvc-aircraft.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
# Full-tuning baselines use 1/10 of the base lr (paper App. A.8).
optim_wrapper = dict(optimizer=dict(lr=4e-3 / 10))
