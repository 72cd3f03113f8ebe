# Segmentation demo (`make demo-dyt-lora`): DyT + LoRA + MLP adapter: DyT's token dispatcher
# (r = 0.5), LoRA rank 8 on q and v, and a d = 8 parallel adapter beside the MLP that every
# token goes through. Same source ViT, data and schedule as the DyT stage (docs/dyt_lora.md).
_base_ = ['./dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py']

model = dict(backbone=dict(adapter=[
    dict(type='LoRA', rank=8),
    dict(type='Adapter', bottleneck=8, scale=1.0, dropout=0.1)]))
