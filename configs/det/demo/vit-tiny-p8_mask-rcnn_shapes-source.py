# Stage 1 of the detection demo: train the whole tiny ViT Mask R-CNN on the source domain
# (shapes on flat backgrounds). A plain ViT: the DyT model in `complete` mode, base unfrozen, no
# DyT terms. Its backbone becomes the frozen base of stage 2.
_base_ = ['./_shapes_base.py']

model = dict(
    backbone=dict(freeze_base=False),
    train_mode='complete',
    test_mode='complete',
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
custom_hooks = []  # nothing is dispatched in this stage
train_dataloader = dict(dataset=dict(ann_file='source/annotations/instances_train.json',
                                     data_prefix=dict(img='source/train/')))
val_dataloader = dict(dataset=dict(ann_file='source/annotations/instances_val.json',
                                   data_prefix=dict(img='source/val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='data/det_shapes/source/annotations/instances_val.json')
test_evaluator = val_evaluator
