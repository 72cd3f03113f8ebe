"""mmdet backbone over the DyT core: ViTDet's plain ViT, last block as one map."""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DEFAULT_ADAPTER, DEFAULT_DISPATCH


@MODELS.register_module()
class DyTDetViT(DyTBackboneBase):
    """DyT ViT laid out as ViTDet's backbone (mmdet scope).

    * No class token: the checkpoint's class token and its position embedding
      are dropped on load, and the 14 x 14 position embeddings are resized
      (bicubic) to the input grid (64 x 64 for 1024 px, patch 16).
    * Window attention (``window_size`` 14) in every block but the
      ``global_blocks`` (2, 5, 8, 11 in ViT-B), as ViTDet: at 4096 tokens,
      global attention everywhere would cost about 200 G more per image.
      ViTDet's relative position biases are new, trained parameters that an
      ImageNet ViT does not have; they are left out (the base stays frozen
      and exactly pre-trained).
    * The output is the last block's raw tokens as one ``(B, C, H/p, W/p)``
      map; :class:`SimpleFeaturePyramid` builds the pyramid from it.
    * Dispatch is MLP dispatch (window attention sees every token); skipped
      tokens keep their residual and adapter update, so the map is complete.

    Inputs must have sides that are multiples of the patch size (the
    detection configs pad every batch to a fixed size).

    Args:
        window_size, global_blocks: ViTDet's attention layout, see
            :class:`dyt_mm.DyTViT`; ``window_size=0`` for global attention.
        arch, img_size, patch_size, in_channels, drop_path_rate: see :class:`dyt_mm.DyTViT`.
        adapter, dispatch, freeze_base: likewise.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
        **vit_options: what a pre-trained family needs (see :class:`dyt_mm.DyTViT`).
    """

    def __init__(self, arch='base', img_size=1024, patch_size: int = 16, in_channels: int = 3,
                 window_size: int = 14, global_blocks: Sequence[int] = (2, 5, 8, 11),
                 drop_path_rate: float = 0.0, adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, freeze_base: bool = True,
                 init_cfg: Optional[dict] = None, **vit_options):
        super().__init__(
            dict(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                 drop_path_rate=drop_path_rate, variant='mlp', adapter=adapter,
                 dispatch=dispatch, freeze_base=freeze_base, class_token=False,
                 final_norm=False, window_size=window_size, global_blocks=global_blocks,
                 **vit_options),
            init_cfg=init_cfg)

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[Tuple[torch.Tensor], torch.Tensor]:
        """The last block's map ``(B, C, H/p, W/p)`` (as a 1-tuple) and the dispatch masks."""
        out = self.forward_dyt(x)
        feature = out.tokens.transpose(1, 2).reshape(x.shape[0], -1, *out.grid)
        return (feature, ), out.masks

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return self.forward_with_masks(x)[0]
