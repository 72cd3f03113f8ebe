# Stage 2 of the detection demo: DyT adapts the frozen stage-1 ViT to the target domain (shapes
# on textured backgrounds) with r = 0.5 and every DyT term; new pyramid and heads.
_base_ = ['./_shapes_base.py']

model = dict(
    backbone=dict(
        adapter=dict(bottleneck=16, scale=1.0, dropout=0.1),
        # written by tools/demo/det_demo.py from the stage-1 checkpoint
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/det_demo/source_vit.pth')),
    dyt_loss=dict(target_rate=0.5, rate_weight=2.0, complete_weight=1.0, distill_weight=1.0))
custom_hooks = [dict(type='DyTHook', tau=5.0, save_trainable_only=True)]
# The demo evaluates once, after training, with runner.test() (same images): no val loop.
val_dataloader = None
val_cfg = None
val_evaluator = None
