# DyT on a frozen ViT-B/16 (ImageNet-21K, timm's jx_vit_base_patch16_224_in21k converted with
# tools/convert/timm_vit_to_dyt.py). MLP dispatch, adapter d = 64 (complete data sets, video,
# segmentation); VTAB-1K configs override d = 8.
model = dict(
    type='DyTImageClassifier',
    data_preprocessor=dict(
        # the IN-21K ViT was trained on inputs scaled to [-1, 1]
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True),
    backbone=dict(
        type='DyTVisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        variant='mlp',
        # dropout 0.1 and the fixed output scale are the official code's (not in the paper)
        adapter=dict(type='Adapter', bottleneck=64, scale=0.1, dropout=0.1),
        dispatch=dict(tau=5.0, threshold=0.5),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-b16-in21k_dyt.pth')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)),
    # L = L_cls + L'_cls + L_distill + 2 * L_rate, r = 0.5
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0),
)
