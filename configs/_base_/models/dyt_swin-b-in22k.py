# DyT on a frozen Swin-B (ImageNet-22K, timm's swin_base_patch4_window7_224.ms_in22k), converted
# with tools/convert/timm_vit_to_dyt.py. A dispatcher and a parallel adapter (d = 64) on the MLP
# of each of the 24 blocks; window attention sees every token (paper, Table 17). The head reads
# the mean of the last stage's tokens, as timm's Swin. Everything else as for ViT-B/16.
_base_ = './dyt_vit-b16.py'
model = dict(
    # ImageNet normalisation, as the Swin weights were trained
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(
        _delete_=True,
        type='DyTSwinTransformer',
        arch='base',
        img_size=224,
        patch_size=4,
        window_size=7,
        variant='mlp',
        adapter=dict(type='Adapter', bottleneck=64, scale=0.1, dropout=0.1),
        dispatch=dict(tau=5.0, threshold=0.5),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/swin-b-in22k_dyt.pth')),
    head=dict(in_channels=1024))
