# Something-Something V2, 8 frames: LoRA rank 32 on q and v (1.18 M parameters; no
# dispatch).
# Paper (Table 6): 45.62 top-1, 142.53 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py'

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=32), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
