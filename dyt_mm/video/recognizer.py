"""mmaction recognizer with the DyT training terms."""
import torch
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS
from mmaction.utils import SampleList

from ..models.task_base import DyTTaskMixin
from .backbone import DyTVideoViT


@MODELS.register_module()
class DyTRecognizer3D(DyTTaskMixin, Recognizer3D):
    """Recognizer3D whose ``loss()`` adds the DyT terms, each logged by name.

    * ``loss_cls`` (and the head's ``top{k}_acc``): the dynamic model;
    * ``loss_complete``: the head's loss of the complete model (same weights,
      nothing skipped), times ``complete_weight``;
    * ``loss_distill``: KL(complete || dynamic) of the clip scores, teacher
      detached, times ``distill_weight``;
    * ``loss_rate``: ``rate_weight * (mean keep rate - r)^2`` over every
      frame of the batch.

    These are the terms of :class:`~dyt_mm.cls.DyTImageClassifier`. Val/test
    run the ``test_mode`` path and average the views of a clip in the head,
    as mmaction does.

    Args ``dyt_loss``, ``train_mode``, ``test_mode``: see
    :class:`~dyt_mm.models.task_base.DyTTaskMixin`.
    """

    backbone_type = DyTVideoViT

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.with_neck:
            raise ValueError('DyTRecognizer3D takes no neck: its head reads the frame tokens')

    def loss(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> dict:
        def head_losses(scores) -> dict:
            return self.cls_head.loss_by_feat(scores, data_samples)

        # (N, views, C, T, H, W) -> (N * views, C, T, H, W), as Recognizer3D.extract_feat does.
        clips = inputs.flatten(0, 1)
        return self.dyt_losses(clips, head_losses, lambda scores: head_losses(scores)['loss_cls'],
                               head=self.cls_head)
