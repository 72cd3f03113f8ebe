"""mmpretrain classifier with the DyT training terms."""
from typing import List, Optional

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..models.dyt import MODES, DyTObjective, dyt_mode
from ..models.dyt.block import check_choice
from .backbone import DyTVisionTransformer


@MODELS.register_module()
class DyTImageClassifier(ImageClassifier):
    """ImageClassifier whose ``loss()`` adds the DyT terms, each logged by name.

    * ``loss_cls``: the head's loss (CE) of the dynamic model;
    * ``loss_complete``: the same loss of the complete model (same weights,
      nothing skipped), times ``complete_weight``;
    * ``loss_distill``: KL(complete || dynamic), teacher detached, times
      ``distill_weight``;
    * ``loss_rate``: ``rate_weight * (mean keep rate - r)^2``.

    Args:
        dyt_loss: keyword arguments of :class:`dyt_mm.DyTObjective`
            (target_rate, rate_weight, complete_weight, distill_weight).
        train_mode: execution mode of the dynamic pass in training
            (``masked``; ``complete`` trains a plain adapter model).
        test_mode: execution mode of val/test (``sparse``: really faster).
    """

    def __init__(self, *args, dyt_loss: Optional[dict] = None, train_mode: str = 'masked',
                 test_mode: str = 'sparse', **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.backbone, DyTVisionTransformer):
            raise TypeError('DyTImageClassifier needs a DyTVisionTransformer backbone, got '
                            f'{type(self.backbone).__name__}')
        check_choice('train_mode', train_mode, MODES)
        check_choice('test_mode', test_mode, MODES)
        self.dyt_objective = DyTObjective(**(dyt_loss or {}))
        self.train_mode = train_mode
        self.test_mode = test_mode

    def _logits_and_masks(self, inputs: torch.Tensor, mode: str):
        with dyt_mode(self.backbone, mode):
            feats, masks = self.backbone.forward_with_masks(inputs)
        if self.with_neck:
            feats = self.neck(feats)
        return self.head(feats), masks

    def _head_loss(self, logits: torch.Tensor, data_samples: List[DataSample]) -> torch.Tensor:
        return self.head._get_loss(logits, data_samples)['loss']

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        objective = self.dyt_objective
        logits, masks = self._logits_and_masks(inputs, self.train_mode)
        losses = {'loss_cls': self._head_loss(logits, data_samples)}
        complete_logits = None
        if objective.needs_complete:
            complete_logits, _ = self._logits_and_masks(inputs, 'complete')
            if objective.complete_weight > 0:
                losses['loss_complete'] = objective.complete_weight * self._head_loss(
                    complete_logits, data_samples)
        losses.update(objective.extra_terms(masks, logits, complete_logits))
        return losses

    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        with dyt_mode(self.backbone, self.test_mode):
            feats = self.extract_feat(inputs)
        return self.head.predict(feats, data_samples, **kwargs)
