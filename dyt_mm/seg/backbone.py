"""mmseg backbone over the DyT core: single-scale feature maps after chosen blocks."""
from typing import Sequence, Tuple

import torch
from mmseg.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DyTOutput


@MODELS.register_module()
class DyTSegViT(DyTBackboneBase):
    """DyT ViT for dense prediction (mmseg scope).

    Returns the raw outputs of the ``out_indices`` blocks as ``(B, C, H/p,
    W/p)`` maps, as BEiT-style UperNets (and the official DyT code) do; a
    neck such as :class:`ViTFeaturePyramid` turns them into a pyramid.

    * The ViT is built at the crop size, so position embeddings of a 224
      checkpoint are resized (bicubic) once, when the base is loaded; other
      input sizes (whole-image test, small sliding-window crops) interpolate
      them on the fly.
    * The class token is kept, as in pre-training (every image token attends
      to it), and dropped from the maps.
    * No final norm: the features are raw block outputs, so the checkpoint's
      final LayerNorm would only compute something nobody reads.
    * Skipped tokens stay in the maps: they skip only the MLP and keep their
      residual and adapter update, in every execution mode.

    Input sides must be multiples of the patch size (the core raises a
    ``ValueError`` naming the size otherwise); :class:`DyTEncoderDecoder`
    pads test inputs, and training crops are padded to the crop size by
    ``SegDataPreProcessor(size=crop_size)``.

    Args:
        out_indices: increasing block indices whose outputs become maps
            (negative indices count from the last block).
        init_cfg, **options: see :class:`~dyt_mm.models.backbone_base.DyTBackboneBase`.
    """

    default_options = dict(img_size=512)
    fixed_options = dict(class_token=True, final_norm=False)

    def __init__(self, out_indices: Sequence[int] = (3, 5, 7, 11), **options):
        super().__init__(out_indices=out_indices, **options)
        self._check_out_indices(out_indices)

    def _check_out_indices(self, out_indices: Sequence[int]) -> None:
        depth = self.vit.depth
        resolved = [i % depth for i in out_indices if -depth <= i < depth]
        if (not out_indices or len(resolved) != len(out_indices)
                or any(a >= b for a, b in zip(resolved, resolved[1:]))):
            raise ValueError(f'out_indices must be increasing block indices in '
                             f'[{-depth}, {depth}) for a ViT of depth {depth}, '
                             f'got {tuple(out_indices)}')

    @property
    def patch_size(self) -> int:
        return self.vit.patch_size

    def format_output(self, out: DyTOutput, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps ``(B, C, H/p, W/p)``, one per out index."""
        B, _, H, W = x.shape
        grid = (H // self.patch_size, W // self.patch_size)
        return tuple(
            tokens[:, self.vit.num_prefix:].transpose(1, 2).reshape(B, -1, *grid)
            for tokens in out.hidden_states)
