"""mmpretrain classifier with the DyT training terms."""
from typing import List, Optional

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..models.task_base import DyTTaskMixin
from .backbone import DyTClsBackbone


@MODELS.register_module()
class DyTImageClassifier(DyTTaskMixin, ImageClassifier):
    """ImageClassifier whose ``loss()`` adds the DyT terms, each logged by name.

    * ``loss_cls``: the head's loss (CE) of the dynamic model;
    * ``loss_complete``: the same loss of the complete model (same weights,
      nothing skipped), times ``complete_weight``;
    * ``loss_distill``: KL(complete || dynamic), teacher detached, times
      ``distill_weight``;
    * ``loss_rate``: ``rate_weight * (mean keep rate - r)^2``.

    Args ``dyt_loss``, ``train_mode``, ``test_mode``: see
    :class:`~dyt_mm.models.task_base.DyTTaskMixin`.
    """

    backbone_type = DyTClsBackbone

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        self._check_labels(data_samples)

        def head_loss(logits):
            return self.head._get_loss(logits, data_samples)['loss']

        return self.dyt_losses(inputs, lambda logits: {'loss_cls': head_loss(logits)},
                               head_loss, head=self.head)

    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        # A test list with a label outside the classes would only lower the accuracy.
        self._check_labels(data_samples or [])
        return super().predict(inputs, data_samples, **kwargs)

    def _check_labels(self, data_samples: List[DataSample]) -> None:
        """A label outside the head's classes names its image, in training (CE would
        only say ``IndexError: Target 12 is out of bounds``) and in evaluation."""
        num_classes = getattr(self.head, 'num_classes', None)
        if num_classes is None:
            return
        for sample in data_samples:
            if 'gt_label' not in sample:
                continue
            bad = [int(v) for v in sample.gt_label.flatten() if not 0 <= int(v) < num_classes]
            if bad:
                raise ValueError(f'label {bad[0]} of {sample.get("img_path", "a sample")} is '
                                 f'outside the {num_classes} classes of the head '
                                 f'(0..{num_classes - 1}); check the data set\'s labels or the '
                                 "head's num_classes")
