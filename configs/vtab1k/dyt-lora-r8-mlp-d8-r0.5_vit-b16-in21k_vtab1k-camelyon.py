# VTAB-1K camelyon: DyT's token dispatcher (r = 0.5), LoRA rank 8 on q and v, and a d = 8
# parallel adapter beside the MLP that every token goes through, the skipped ones
# included. Beyond the paper (docs/dyt_lora.md); without the adapter: the
# dyt-lora-r8-r0.5 config beside this one.
_base_ = './dyt-r0.5_vit-b16-in21k_vtab1k-camelyon.py'

model = dict(backbone=dict(adapter=[
    dict(type='LoRA', rank=8),
    dict(type='Adapter', bottleneck=8, scale=1.0, dropout=0.1)]))
