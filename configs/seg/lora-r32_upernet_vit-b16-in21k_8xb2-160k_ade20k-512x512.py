# UperNet on ADE20K (160k iterations, 512 x 512 crops): LoRA rank 32 on q and v (1.18 M
# parameters; no dispatch).
# Paper (Table 10): 47.34 mIoU, 605.36 GFLOPs.
_base_ = './dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=32), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
