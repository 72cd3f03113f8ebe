"""mmseg backbone over the DyT core: single-scale feature maps after chosen blocks."""
from typing import Optional, Sequence, Tuple

import torch
from mmseg.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DEFAULT_ADAPTER, DEFAULT_DISPATCH


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
        arch, img_size, patch_size, in_channels, drop_path_rate: see :class:`dyt_mm.DyTViT`.
        variant, adapter, dispatch, freeze_base: likewise.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
        **vit_options: what a pre-trained family needs (``num_reg_tokens``,
            ``layer_scale``, ``pre_norm``, ``mlp_act``, ``rope_ref_grid``, ...;
            see :class:`dyt_mm.DyTViT`).
    """

    def __init__(self, arch='base', img_size=512, patch_size: int = 16, in_channels: int = 3,
                 out_indices: Sequence[int] = (3, 5, 7, 11), drop_path_rate: float = 0.0,
                 variant: str = 'mlp', adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, freeze_base: bool = True,
                 init_cfg: Optional[dict] = None, **vit_options):
        super().__init__(
            dict(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                 drop_path_rate=drop_path_rate, variant=variant, adapter=adapter,
                 dispatch=dispatch, freeze_base=freeze_base, class_token=True,
                 final_norm=False, out_indices=out_indices, **vit_options),
            init_cfg=init_cfg)
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

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        """Feature maps ``(B, C, H/p, W/p)`` per out index, and the dispatch masks."""
        out = self.forward_dyt(x)
        B, _, H, W = x.shape
        grid = (H // self.patch_size, W // self.patch_size)
        maps = tuple(
            tokens[:, self.vit.num_prefix:].transpose(1, 2).reshape(B, -1, *grid)
            for tokens in out.hidden_states)
        return maps, out.masks

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.forward_with_masks(x)[0]
