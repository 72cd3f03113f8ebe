# DyT UperNet on a frozen ViT-B/16 (ImageNet-21K, converted with tools/convert/timm_vit_to_dyt.py)
# for 512 x 512 crops: mmseg's BEiT-style UperNet (UPerHead 768 channels, pool scales 1/2/3/6,
# auxiliary FCNHead on level 2 with weight 0.4) with the DyT backbone and pyramid, AdamW and the
# 160k-iteration schedule of paper App. A.8. The data set comes from the config that uses this.
_base_ = [
    'mmseg::_base_/models/upernet_beit.py', 'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/seg_runtime.py'
]
# (512, 512) is spelled out: `crop_size` belongs to the data set base that goes with this file.
model = dict(
    type='DyTEncoderDecoder',
    # the IN-21K ViT was trained on inputs scaled to [-1, 1]; training crops are padded to 512
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='DyTSegViT',
        arch='base',
        img_size=(512, 512),  # the 14 x 14 position embeddings are resized to 32 x 32 on load
        patch_size=16,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        variant='mlp',
        # dropout 0.1 and the fixed output scale 0.1 are the official code's (not in the paper)
        adapter=dict(type='Adapter', bottleneck=64, scale=0.1, dropout=0.1),
        dispatch=dict(tau=5.0, threshold=0.5),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-b16-in21k_dyt.pth')),
    # x4 (two transposed convs, GELU between), x2, x1, /2 -- as in the DyT segmentation code
    neck=dict(_delete_=True, type='ViTFeaturePyramid', embed_dims=768, rescales=(4, 2, 1, 0.5)),
    # L = CE + 0.4 aux CE + complete-model CE + pixel KL + 2 L_rate, r = 0.5. The official code
    # trained with CE + 0.4 aux CE + 2 L_rate only: complete_weight=0, distill_weight=0.
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))

# Paper: AdamW, lr 1e-3, weight decay 0.05, batch 16, "cosine". The official code trained with
# poly decay (power 1) after a 1500-iteration linear warm-up; we follow the code, which is what
# produced the reported mIoU (the paper's "cosine" reads like a copy of the classification row).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]
# Batch 16 = 8 GPUs x 2 images (train_dataloader.batch_size=2 in the data set configs);
# `tools/train.py --auto-scale-lr` rescales lr for another total batch size. The official runs
# used AMP: add --amp on GPUs.
auto_scale_lr = dict(enable=False, base_batch_size=16)
