# DyT on a frozen EVA-02 CLIP ViT-B/16 image tower (Merged-2B): timm's
# eva02_base_patch16_clip_224.merged2b, converted with
#   python tools/convert/timm_vit_to_dyt.py eva02_base_patch16_clip_224.merged2b.safetensors \
#       checkpoints/eva02-b16-clip_dyt.pth
# SwiGLU MLP (hidden 2048, still one dispatched site), LayerNorms inside attention and MLP, and
# 2-D RoPE on timm's 16 x 16 reference grid (kept tokens keep their positions in sparse mode).
# Everything else (MLP dispatch, adapter d = 64, head, DyT losses) as for ViT-B/16 IN-21K.
_base_ = './dyt_vit-b16.py'
model = dict(
    # OpenAI CLIP's normalisation
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]),
    backbone=dict(
        # ViT-B with the SwiGLU hidden width 2048 (timm: int(768 * 4 * 2 / 3))
        arch=dict(_delete_=True, embed_dims=768, depth=12, num_heads=12, mlp_ratio=4 * 2 / 3),
        mlp_act='swiglu',
        inner_norms=('attn', 'mlp'),
        rope_ref_grid=(16, 16),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva02-b16-clip_dyt.pth')))
