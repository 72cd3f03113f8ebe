# Segmentation demo (`make demo-dyt-lora`): LoRA rank 8 on q and v, no dispatch; new pyramid and
# heads. Same source ViT, data and schedule as the DyT stage.
_base_ = ['./dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py']

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
