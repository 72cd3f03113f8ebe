"""mmpretrain backbones over the DyT core: one pooled feature vector per image."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DyTOutput
from ..models.dyt.registry import check_choice
from ..models.dyt.swin import DyTSwin

OUT_TYPES = ('cls_token', 'avg_featmap')


class DyTClsBackbone(DyTBackboneBase):
    """A DyT network pooled into one feature vector per image (``out_type``)."""

    out_type = 'avg_featmap'
    # the block whose output the one feature pools, as mmpretrain's ViT names its outputs
    # (its vis_tsne tool labels the features by it)
    out_indices = (-1, )

    def format_output(self, out: DyTOutput, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return (self.vit.pool(out.tokens, self.out_type), )


@MODELS.register_module()
class DyTVisionTransformer(DyTClsBackbone):
    """DyT ViT for image classification (mmpretrain scope).

    Args:
        out_type: ``cls_token`` (default, as in the paper) or ``avg_featmap``
            (mean of the image tokens); then the ViT's ``fc_norm`` if it has one.
        class_token: whether the ViT has a class token; default: only for
            ``out_type='cls_token'`` (MAE pools a ViT that has one: set True).
        **options, init_cfg: see :class:`~dyt_mm.models.backbone_base.DyTBackboneBase`;
            here also ``merge=dict(r=R)``: token merging (ToMe), R image
            tokens per block.
    """
    merges_tokens = True

    def __init__(self, out_type: str = 'cls_token', class_token: Optional[bool] = None,
                 **options):
        check_choice('out_type', out_type, OUT_TYPES)
        if class_token is None:
            class_token = out_type == 'cls_token'
        super().__init__(class_token=class_token, **options)
        self.out_type = out_type


@MODELS.register_module()
class DyTSwinTransformer(DyTClsBackbone):
    """DyT Swin Transformer for image classification (mmpretrain scope): the mean of
    the last stage's tokens, as timm's Swin.

    Args:
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base
            (a timm Swin file or one made by ``tools/convert/timm_vit_to_dyt.py``).
        **options: see :class:`dyt_mm.models.dyt.swin.DyTSwin` (arch,
            img_size, patch_size, window_size, drop_path_rate, adapter,
            dispatch, freeze_base, ...).
    """

    network = DyTSwin
