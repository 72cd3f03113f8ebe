# DyT (MLP dispatch, d = 64, r = 0.5) UperNet on ADE20K, 160k iterations, 512 x 512 crops, with
# mmseg's own ADE20KDataset and pipelines. Paper (Table 10): 46.90 mIoU, 584.57 GFLOPs.
_base_ = ['./_dyt-upernet_vit-b16-in21k_512x512-160k.py', 'mmseg::_base_/datasets/ade20k.py']
model = dict(decode_head=dict(num_classes=150), auxiliary_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
