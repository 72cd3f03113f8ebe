# DyT on a frozen DINOv2 ViT-B/14 with 4 registers (LVD-142M): timm's
# vit_base_patch14_reg4_dinov2.lvd142m, converted with
#   python tools/convert/timm_vit_to_dyt.py vit_base_patch14_reg4_dinov2.lvd142m.safetensors \
#       checkpoints/dinov2-b14-reg4_dyt.pth
# Pre-trained at 518 px (37 x 37 patches): the position embeddings are interpolated to 224 px
# (16 x 16 patches), antialiased as timm does. Registers are prefix tokens, never dispatched.
# Everything else (MLP dispatch, adapter d = 64, head, DyT losses) as for ViT-B/16 IN-21K.
_base_ = './dyt_vit-b16.py'
model = dict(
    # ImageNet normalisation
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(
        arch='base',
        patch_size=14,
        num_reg_tokens=4,  # never dispatched, like the class token
        no_embed_class=True,
        layer_scale=1e-5,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2-b14-reg4_dyt.pth')))
