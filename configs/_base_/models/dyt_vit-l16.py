# DyT on a frozen ViT-L/16 (ImageNet-21K: timm's vit_large_patch16_224.augreg_in21k, converted with
#   python tools/convert/timm_vit_to_dyt.py vit_large_patch16_224.augreg_in21k.safetensors \
#       checkpoints/vit-l16-in21k_dyt.pth
# which reads width 1024, depth 24, 16 heads off the tensors). MLP dispatch, adapter d = 64 as in
# the paper's Table 18; the VTAB-1K configs (Table 19) override d = 8. The rest as for ViT-B/16.
_base_ = './dyt_vit-b16.py'
model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-l16-in21k_dyt.pth')),
    head=dict(in_channels=1024))
