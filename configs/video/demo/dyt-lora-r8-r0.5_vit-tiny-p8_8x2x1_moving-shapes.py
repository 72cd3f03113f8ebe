# Video demo (`make demo-dyt-lora`): DyT + LoRA: DyT's token dispatcher (r = 0.5 and every DyT
# term) with LoRA rank 8 on q and v in place of the MLP adapter. Same random frozen base (seeded),
# data and schedule as the DyT demo (docs/dyt_lora.md).
_base_ = ['./dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py']

model = dict(backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8)))
