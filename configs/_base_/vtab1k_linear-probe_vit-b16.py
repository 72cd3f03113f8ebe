# Everything a VTAB-1K task config of linear probe (the ViT stays frozen; only the head trains)
# shares: the DyT VTAB-1K setup (data, 100 epochs, lr 1e-3) with this method's model. Paper
# (Table 3): 17.58 GFLOPs.
_base_ = './vtab1k_dyt_vit-b16.py'

model = dict(
    backbone=dict(adapter=None, dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
