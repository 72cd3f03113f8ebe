"""mmseg EncoderDecoder with the DyT training terms and sparse inference."""
from typing import List

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList, add_prefix

from ..models.task_base import DyTTaskMixin
from .backbone import DyTSegViT


@MODELS.register_module()
class DyTEncoderDecoder(DyTTaskMixin, EncoderDecoder):
    """EncoderDecoder whose ``loss()`` adds the DyT terms, each logged by name.

    * ``decode.loss_ce`` / ``aux.loss_ce``: the heads' losses of the dynamic
      model, as in mmseg;
    * ``loss_complete``: the decode head's loss of the complete model (same
      weights, nothing skipped), times ``complete_weight``;
    * ``loss_distill``: pixel-wise KL(complete || dynamic) of the decode
      head's logits, resized to the label size as the heads' losses are,
      averaged over all pixels (mmseg's CE also averages over all of them);
      teacher detached, times ``distill_weight``;
    * ``loss_rate``: ``rate_weight * (mean keep rate - r)^2``.

    The official DyT segmentation code used only CE, aux CE and the rate
    loss (``complete_weight=distill_weight=0`` here, which also skips the
    complete pass). Inference runs ``test_mode`` (``sparse``: only the kept
    tokens go through the MLPs), whole-image or sliding-window.

    Args ``dyt_loss``, ``train_mode``, ``test_mode``: see
    :class:`~dyt_mm.models.task_base.DyTTaskMixin`.
    """

    backbone_type = DyTSegViT

    def loss(self, inputs: torch.Tensor, data_samples: SampleList) -> dict:
        def features_and_logits(feats):
            return feats, self.decode_head(feats)

        def heads_losses(outputs) -> dict:
            feats, seg_logits = outputs
            losses = add_prefix(self.decode_head.loss_by_feat(seg_logits, data_samples),
                                'decode')
            if self.with_auxiliary_head:
                losses.update(self._auxiliary_head_forward_train(feats, data_samples))
            return losses

        def decode_loss(outputs) -> torch.Tensor:
            """Sum of the decode head's loss terms (``acc_seg`` is not one)."""
            losses = self.decode_head.loss_by_feat(outputs[1], data_samples)
            return sum(value for name, value in losses.items() if 'loss' in name)

        def logits_at_label_size(outputs) -> torch.Tensor:
            return resize(outputs[1], size=data_samples[0].gt_sem_seg.shape, mode='bilinear',
                          align_corners=self.align_corners)

        return self.dyt_losses(inputs, heads_losses, decode_loss, logits_at_label_size,
                               head=features_and_logits)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Logits at the input size; inputs are padded to a multiple of the patch size.

        Whole test images and the last crops of a sliding window can have any
        size; the logits of the padded input are cropped back, so padding
        never stretches the prediction.
        """
        H, W = inputs.shape[-2:]
        patch = self.backbone.patch_size
        pad_h, pad_w = -H % patch, -W % patch
        if not (pad_h or pad_w):
            return super().encode_decode(inputs, batch_img_metas)
        padded = F.pad(inputs, (0, pad_w, 0, pad_h))
        # a torch.Size img_shape tells the head to resize its logits to exactly this size
        metas = [dict(meta, img_shape=padded.shape[2:]) for meta in batch_img_metas]
        return super().encode_decode(padded, metas)[..., :H, :W]
