"""mmdet Mask R-CNN with the DyT training terms and sparse inference."""
import copy
from typing import Dict, List, Tuple

import torch
from mmdet.models.detectors import MaskRCNN
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi

from ..models.task_base import DyTTaskMixin
from .backbone import DyTDetViT


@MODELS.register_module()
class DyTMaskRCNN(DyTTaskMixin, MaskRCNN):
    """Mask R-CNN whose ``loss()`` adds the DyT terms, each logged by name.

    * the RPN and RoI-head losses of the dynamic model, named as in mmdet;
    * ``loss_complete``: the sum of the same losses of the complete model
      (same weights, nothing skipped; it samples its own proposals and RoIs),
      times ``complete_weight``: it trains the shared adapters and the heads
      on features with every token, as the paper's complete-model term;
    * ``loss_distill``: KL(complete || dynamic) of the RoI classifier's
      logits (background included), teacher detached, times
      ``distill_weight``. Both models classify the *same* RoIs, the dynamic
      model's top ``distill_rois`` proposals per image: the two passes'
      own proposals and sampled RoIs differ, and a KL is only meaningful
      between predictions for one box. Box and mask regressions are not
      distilled (a KL of class distributions is the paper's term);
    * ``loss_rate``: ``rate_weight * (mean keep rate - r)^2``.

    Test (and val) run ``test_mode`` (``sparse``: only the kept tokens go
    through the MLPs); the heads see complete feature maps either way.

    Args:
        distill_rois: proposals per image whose classification is distilled.
        dyt_loss, train_mode, test_mode: see
            :class:`~dyt_mm.models.task_base.DyTTaskMixin`.
    """

    backbone_type = DyTDetViT

    def __init__(self, *args, distill_rois: int = 256, **kwargs):
        super().__init__(*args, **kwargs)
        if distill_rois < 1:
            raise ValueError(f'distill_rois must be >= 1, got {distill_rois!r}')
        self.distill_rois = distill_rois

    def _detection_losses(self, feats: Tuple[torch.Tensor, ...], data_samples: SampleList
                          ) -> Tuple[Dict[str, torch.Tensor], List[torch.Tensor]]:
        """mmdet's two-stage losses of given features, and the RPN's proposal boxes.

        What ``TwoStageDetector.loss`` does after ``extract_feat``.
        """
        rpn_samples = copy.deepcopy(data_samples)
        for sample in rpn_samples:  # the RPN is class-agnostic
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_losses, proposals = self.rpn_head.loss_and_predict(feats, rpn_samples,
                                                               proposal_cfg=proposal_cfg)
        losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v
                  for k, v in rpn_losses.items()}
        boxes = [p.bboxes.detach() for p in proposals]  # by score; the RoI head renames them
        losses.update(self.roi_head.loss(feats, proposals, data_samples))
        return losses, boxes

    def loss(self, inputs: torch.Tensor, data_samples: SampleList) -> dict:
        distilled = {}

        def dynamic_losses(feats) -> dict:
            losses, boxes = self._detection_losses(feats, data_samples)
            distilled['rois'] = bbox2roi([b[:self.distill_rois] for b in boxes])
            return losses

        def complete_loss(feats) -> torch.Tensor:
            losses, _ = self._detection_losses(feats, data_samples)
            return sum(sum(v) if isinstance(v, list) else v
                       for k, v in losses.items() if 'loss' in k)

        def roi_class_logits(feats) -> torch.Tensor:
            return self.roi_head._bbox_forward(feats, distilled['rois'])['cls_score']

        return self.dyt_losses(inputs, dynamic_losses, complete_loss, roi_class_logits)
