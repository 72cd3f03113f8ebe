# Digits demo, stage 2 of `make demo-compare`: DyT + LoRA: DyT's token dispatcher (r = 0.5 and
# every DyT term) with LoRA rank 8 on q and v in place of the MLP adapter. A skipped token gets
# no MLP-side adaptation, only its adapted attention (docs/dyt_lora.md). Same source ViT, data and
# schedule as the DyT stage.
_base_ = ['./dyt-r0.5_vit-tiny-p4_digits-target.py']

model = dict(backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8)))
