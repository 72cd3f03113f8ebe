# Something-Something V2, 8 frames: VPT-deep, 8 prompts per layer (0.07 M parameters; no
# dispatch).
# Paper (Table 6): 38.17 top-1, 148.44 GFLOPs per 8-frame clip.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py'

model = dict(
    backbone=dict(
        adapter=dict(_delete_=True, type='VPTPrompts', num_prompts=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
