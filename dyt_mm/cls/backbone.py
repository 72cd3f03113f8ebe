"""mmpretrain backbone over the DyT core."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DEFAULT_ADAPTER, DEFAULT_DISPATCH, DyTOutput
from ..models.dyt.block import check_choice

OUT_TYPES = ('cls_token', 'avg_featmap')


@MODELS.register_module()
class DyTVisionTransformer(DyTBackboneBase):
    """DyT ViT for image classification (mmpretrain scope).

    Args:
        arch, img_size, patch_size, in_channels, drop_path_rate, variant,
            adapter, dispatch, freeze_base: see :class:`dyt_mm.DyTViT`.
        out_type: ``cls_token`` (default, as in the paper) or ``avg_featmap``
            (mean of the image tokens).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
    """

    def __init__(self, arch='base', img_size=224, patch_size: int = 16, in_channels: int = 3,
                 drop_path_rate: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER, dispatch: Optional[dict] = DEFAULT_DISPATCH,
                 freeze_base: bool = True, out_type: str = 'cls_token',
                 init_cfg: Optional[dict] = None):
        check_choice('out_type', out_type, OUT_TYPES)
        super().__init__(
            dict(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                 drop_path_rate=drop_path_rate, variant=variant, adapter=adapter,
                 dispatch=dispatch, freeze_base=freeze_base,
                 class_token=out_type == 'cls_token'),
            init_cfg=init_cfg)
        self.out_type = out_type

    def pool(self, out: DyTOutput) -> torch.Tensor:
        if self.out_type == 'cls_token':
            return out.tokens[:, 0]
        return out.tokens[:, self.vit.num_prefix:].mean(dim=1)

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[Tuple[torch.Tensor], torch.Tensor]:
        out = self.forward_dyt(x)
        return (self.pool(out), ), out.masks

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return self.forward_with_masks(x)[0]
