# Stage 1 of the detection demo: train the whole tiny ViT Mask R-CNN on the source domain
# (shapes on flat backgrounds). A plain ViT, as a downloaded checkpoint is: no adapters and no
# dispatchers, so the backbone that becomes the frozen base of stage 2 is exactly the network
# validated here.
_base_ = ['./_shapes_base.py']

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
custom_hooks = []  # nothing is dispatched in this stage
train_dataloader = dict(dataset=dict(ann_file='source/annotations/instances_train.json',
                                     data_prefix=dict(img='source/train/')))
val_dataloader = dict(dataset=dict(ann_file='source/annotations/instances_val.json',
                                   data_prefix=dict(img='source/val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='data/det_shapes/source/annotations/instances_val.json')
test_evaluator = val_evaluator
