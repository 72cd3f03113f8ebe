# Digits demo, stage 2 of `make demo-compare`: DyT + LoRA + MLP adapter: DyT's token dispatcher
# (r = 0.5), LoRA rank 8 on q and v, and a d = 8 parallel adapter beside the MLP that every
# token goes through, the skipped ones included (docs/dyt_lora.md). Same source ViT, data and
# schedule as the DyT stage.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(backbone=dict(adapter=[
    dict(type='LoRA', rank=8),
    dict(type='Adapter', bottleneck=8, scale=1.0, dropout=0.1)]))
