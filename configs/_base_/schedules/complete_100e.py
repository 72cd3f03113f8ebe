# Complete image data sets (paper App. A.8): AdamW, base lr 1e-3 scaled by batch / 256 (batch
# 1024 = 8 GPUs x 128 -> lr 4e-3), weight decay 0.01, 100 epochs, 20 warm-up epochs, cosine.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=20, end=100,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# `tools/train.py --auto-scale-lr` rescales lr for another total batch size.
auto_scale_lr = dict(base_batch_size=1024)
