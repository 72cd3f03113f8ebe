# DyT on a frozen OpenAI CLIP ViT-B/16 image tower: timm's
# vit_base_patch16_clip_quickgelu_224.openai, converted with
#   python tools/convert/timm_vit_to_dyt.py vit_base_patch16_clip_quickgelu_224.openai.safetensors \
#       checkpoints/clip-b16-openai_dyt.pth --model clip-quickgelu
# The same weights as timm's vit_base_patch16_clip_224.openai, with the QuickGELU OpenAI trained
# them with (timm's vit_*_clip_224 use GELU: mlp_act='gelu' computes those exactly).
# Everything else (MLP dispatch, adapter d = 64, head, DyT losses) as for ViT-B/16 IN-21K.
_base_ = './dyt_vit-b16.py'
model = dict(
    # OpenAI CLIP's normalisation
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]),
    backbone=dict(
        pre_norm=True,
        mlp_act='quick_gelu',
        norm_eps=1e-5,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/clip-b16-openai_dyt.pth')))
