"""mmpretrain backbone over the DyT core."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DEFAULT_ADAPTER, DEFAULT_DISPATCH, DyTOutput
from ..models.dyt.block import check_choice
from ..models.dyt.swin import DyTSwin

OUT_TYPES = ('cls_token', 'avg_featmap')


class DyTClsBackbone(DyTBackboneBase):
    """A DyT network pooled into one feature vector per image (``out_type``)."""

    out_type = 'avg_featmap'

    def pool(self, out: DyTOutput) -> torch.Tensor:
        return self.vit.pool(out.tokens, self.out_type)

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[Tuple[torch.Tensor], torch.Tensor]:
        out = self.forward_dyt(x)
        return (self.pool(out), ), out.masks

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return self.forward_with_masks(x)[0]


@MODELS.register_module()
class DyTVisionTransformer(DyTClsBackbone):
    """DyT ViT for image classification (mmpretrain scope).

    Args:
        arch, img_size, patch_size, in_channels, drop_path_rate: see :class:`dyt_mm.DyTViT`.
        variant, adapter, dispatch, freeze_base: likewise.
        out_type: ``cls_token`` (default, as in the paper) or ``avg_featmap``
            (mean of the image tokens); then the ViT's ``fc_norm`` if it has one.
        class_token: whether the ViT has a class token; default: only for
            ``out_type='cls_token'`` (MAE pools a ViT that has one: set True).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
        **vit_options: what a pre-trained family needs (``num_reg_tokens``,
            ``layer_scale``, ``pre_norm``, ``mlp_act``, ``rope_ref_grid``, ...;
            see :class:`dyt_mm.DyTViT`), and ``merge=dict(r=R)``: token
            merging (ToMe), R image tokens per block.
    """
    merges_tokens = True

    def __init__(self, arch='base', img_size=224, patch_size: int = 16, in_channels: int = 3,
                 drop_path_rate: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER, dispatch: Optional[dict] = DEFAULT_DISPATCH,
                 freeze_base: bool = True, out_type: str = 'cls_token',
                 class_token: Optional[bool] = None, init_cfg: Optional[dict] = None,
                 **vit_options):
        check_choice('out_type', out_type, OUT_TYPES)
        if class_token is None:
            class_token = out_type == 'cls_token'
        super().__init__(
            dict(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                 drop_path_rate=drop_path_rate, variant=variant, adapter=adapter,
                 dispatch=dispatch, freeze_base=freeze_base, class_token=class_token,
                 **vit_options),
            init_cfg=init_cfg)
        self.out_type = out_type


@MODELS.register_module()
class DyTSwinTransformer(DyTClsBackbone):
    """DyT Swin Transformer for image classification (mmpretrain scope): the mean of
    the last stage's tokens, as timm's Swin.

    Args:
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base
            (a timm Swin file or one made by ``tools/convert/timm_vit_to_dyt.py``).
        **swin_options: see :class:`dyt_mm.models.dyt.swin.DyTSwin` (arch,
            img_size, patch_size, window_size, drop_path_rate, adapter,
            dispatch, freeze_base, ...).
    """

    network = DyTSwin

    def __init__(self, init_cfg: Optional[dict] = None, **swin_options):
        super().__init__(swin_options, init_cfg=init_cfg)
