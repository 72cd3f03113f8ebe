# Stage 2 of the digits demo: DyT adapts the frozen stage-1 ViT to the target domain (the
# other half of the digits, rotated, inverted and tinted) with r = 0.5 and every DyT term.
_base_ = ['./_digits_base.py']

model = dict(
    backbone=dict(
        adapter=dict(type='Adapter', bottleneck=16, scale=1.0, dropout=0.1),
        # written by tools/demo/digits_demo.py from the stage-1 checkpoint
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/digits_demo/source_vit.pth')),
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0))
train_dataloader = dict(batch_size=32, dataset=dict(data_prefix='target/train'))
val_dataloader = dict(dataset=dict(data_prefix='target/val'))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=20, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
custom_hooks = [dict(type='DyTHook', tau=5.0, save_trainable_only=True)]
