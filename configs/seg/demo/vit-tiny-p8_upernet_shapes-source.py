# Stage 1 of the segmentation demo: train the whole tiny ViT UperNet on the source domain
# (shapes on flat backgrounds). A plain ViT, as a downloaded checkpoint is: no adapters and no
# dispatchers, so the backbone that becomes the frozen base of stage 2 is exactly the network
# validated here.
_base_ = ['./_shapes_base.py']

model = dict(
    backbone=dict(adapter=None, dispatch=None, freeze_base=False),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
custom_hooks = []  # nothing is dispatched in this stage
train_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='source/images/training',
                                  seg_map_path='source/annotations/training')))
val_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='source/images/validation',
                                  seg_map_path='source/annotations/validation')))
test_dataloader = val_dataloader
