# Stage 1 of the digits demo: pre-train the whole small ViT on the source domain (upright
# digits). A plain ViT, as a downloaded checkpoint is: no adapters and no dispatchers, so the
# exported base (tools/demo/ stage 1) is exactly the network validated here.
_base_ = ['./_digits_base.py']

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
custom_hooks = []  # nothing is dispatched in this stage

# From scratch a ViT needs a warm-up and a lower lr than PEFT (at 1e-3 without one it stays at
# chance for many epochs on this data).
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=3, end=30, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=10)
