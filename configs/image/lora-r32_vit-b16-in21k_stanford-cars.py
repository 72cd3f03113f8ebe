# Stanford Cars: LoRA rank 32 on q and v (1.18 M parameters; no dispatch).
# Paper (Table 6): 87.00 top-1, 17.58 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_stanford-cars.py'

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=32), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
