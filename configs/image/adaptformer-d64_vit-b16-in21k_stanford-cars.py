# Stanford Cars: AdaptFormer (DyT's parallel adapter, d = 64, in every layer; no dispatch).
# Paper (Table 6): 87.33 top-1, 17.81 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_stanford-cars.py'

model = dict(
    backbone=dict(dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
