# Stanford Cars: linear probe (the ViT stays frozen; only the head trains).
# Paper (Table 6): 52.85 top-1, 17.58 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_stanford-cars.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
