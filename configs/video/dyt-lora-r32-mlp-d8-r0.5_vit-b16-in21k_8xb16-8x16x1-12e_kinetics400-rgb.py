# Kinetics-400: DyT's token dispatcher (r = 0.5), LoRA rank 32 on q and v, and a d = 8
# parallel adapter beside the MLP that every token goes through, the skipped ones
# included. Beyond the paper (docs/dyt_lora.md); without the adapter: the
# dyt-lora-r32-r0.5 config beside this one.
_base_ = './dyt-r0.5_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py'

model = dict(backbone=dict(adapter=[
    dict(type='LoRA', rank=32),
    dict(type='Adapter', bottleneck=8, scale=0.1, dropout=0.1)]))
