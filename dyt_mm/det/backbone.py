"""mmdet backbone over the DyT core: ViTDet's plain ViT, last block as one map."""
from typing import Tuple

import torch
from mmdet.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DyTOutput


@MODELS.register_module()
class DyTDetViT(DyTBackboneBase):
    """DyT ViT laid out as ViTDet's backbone (mmdet scope).

    * No class token: the checkpoint's class token and its position embedding
      are dropped on load, and the 14 x 14 position embeddings are resized
      (bicubic) to the input grid (64 x 64 for 1024 px, patch 16).
    * Window attention (``window_size`` 14) in every block but the
      ``global_blocks`` (2, 5, 8, 11 in ViT-B), as ViTDet: at 4096 tokens,
      global attention everywhere would cost about 200 G more per image.
      ViTDet's decomposed relative positions are the ``rel_pos`` option (the
      COCO configs set it): new tables, zero at first so that the frozen
      ImageNet ViT computes what it did, which train with the adapters (or
      come from ViTDet / SAM weights that hold them).
    * The output is the last block's raw tokens as one ``(B, C, H/p, W/p)``
      map; :class:`SimpleFeaturePyramid` builds the pyramid from it.
    * Dispatch is MLP dispatch (window attention sees every token); skipped
      tokens keep their residual and adapter update, so the map is complete.

    Inputs must have sides that are multiples of the patch size (the
    detection configs pad every batch to a fixed size).

    Args:
        window_size, global_blocks: ViTDet's attention layout, see
            :class:`dyt_mm.DyTViT`; ``window_size=0`` for global attention.
        **options, init_cfg: see :class:`~dyt_mm.models.backbone_base.DyTBackboneBase`
            (``variant`` is fixed to ``'mlp'``).
    """

    default_options = dict(img_size=1024, window_size=14, global_blocks=(2, 5, 8, 11))
    fixed_options = dict(variant='mlp', class_token=False, final_norm=False)

    def format_output(self, out: DyTOutput, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """The last block's map ``(B, C, H/p, W/p)``, as a 1-tuple."""
        return (out.tokens.transpose(1, 2).reshape(x.shape[0], -1, *out.grid), )
