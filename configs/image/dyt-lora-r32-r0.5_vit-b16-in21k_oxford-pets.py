# Oxford-Pets: DyT's token dispatcher (r = 0.5) with LoRA rank 32 on q and v in place of
# the MLP adapter (1.18 M + 12 x 769 dispatcher parameters): a skipped token gets no
# MLP-side adaptation. Beyond the paper (docs/dyt_lora.md); the variant with a small
# parallel MLP adapter is the dyt-lora-r32-mlp-d8-r0.5 config beside this one.
_base_ = './dyt-r0.5_vit-b16-in21k_oxford-pets.py'

model = dict(backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=32)))
