# VTAB-1K smallnorb-azim: DyT's token dispatcher (r = 0.5) with LoRA rank 8 on q and v in place of
# the MLP adapter (0.29 M + 12 x 769 dispatcher parameters): a skipped token gets no
# MLP-side adaptation. Beyond the paper (docs/dyt_lora.md); the variant with a small
# parallel MLP adapter is the dyt-lora-r8-mlp-d8-r0.5 config beside this one.
_base_ = './dyt-r0.5_vit-b16-in21k_vtab1k-smallnorb-azim.py'

model = dict(backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8)))
