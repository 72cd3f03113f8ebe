"""mmaction recognizer with the DyT training terms."""
from typing import Optional

import torch
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS
from mmaction.utils import SampleList

from ..models.dyt import MODES, DyTObjective, dyt_mode
from ..models.dyt.block import check_choice
from .backbone import DyTVideoViT


@MODELS.register_module()
class DyTRecognizer3D(Recognizer3D):
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

    Args:
        dyt_loss: keyword arguments of :class:`dyt_mm.DyTObjective`.
        train_mode: execution mode of the dynamic pass in training.
        test_mode: execution mode of val/test (``sparse``: really faster).
    """

    def __init__(self, *args, dyt_loss: Optional[dict] = None, train_mode: str = 'masked',
                 test_mode: str = 'sparse', **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.backbone, DyTVideoViT):
            raise TypeError('DyTRecognizer3D needs a DyTVideoViT backbone, got '
                            f'{type(self.backbone).__name__}')
        if self.with_neck:
            raise ValueError('DyTRecognizer3D takes no neck: its head reads the frame tokens')
        check_choice('train_mode', train_mode, MODES)
        check_choice('test_mode', test_mode, MODES)
        self.dyt_objective = DyTObjective(**(dyt_loss or {}))
        self.train_mode = train_mode
        self.test_mode = test_mode

    def _scores_and_masks(self, inputs: torch.Tensor, mode: str):
        # (N, views, C, T, H, W) -> (N * views, C, T, H, W), as Recognizer3D.extract_feat does.
        clips = inputs.flatten(0, 1)
        with dyt_mode(self.backbone, mode):
            feats, masks = self.backbone.forward_with_masks(clips)
        return self.cls_head(feats), masks

    def loss(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> dict:
        objective = self.dyt_objective
        scores, masks = self._scores_and_masks(inputs, self.train_mode)
        losses = self.cls_head.loss_by_feat(scores, data_samples)
        complete_scores = None
        if objective.needs_complete:
            complete_scores, _ = self._scores_and_masks(inputs, 'complete')
            if objective.complete_weight > 0:
                losses['loss_complete'] = objective.complete_weight * self.cls_head.loss_by_feat(
                    complete_scores, data_samples)['loss_cls']
        losses.update(objective.extra_terms(masks, scores, complete_scores))
        return losses

    def predict(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> SampleList:
        with dyt_mode(self.backbone, self.test_mode):
            return super().predict(inputs, data_samples, **kwargs)
