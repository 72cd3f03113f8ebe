"""mmaction backbone: the DyT core applied to every frame of a clip."""
from typing import Optional, Tuple

import torch
from mmaction.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DEFAULT_ADAPTER, DEFAULT_DISPATCH


@MODELS.register_module()
class DyTVideoViT(DyTBackboneBase):
    """DyT ViT over the frames of a clip (mmaction scope).

    The ``T`` frames are folded into the batch, ``(B, C, T, H, W) -> (B*T, C,
    H, W)``, so every frame is an independent image for the ViT: it gets its
    own class token and its own token dispatch, and nothing in the backbone
    mixes frames (as in the paper; the temporal head is the only place where
    frames meet).

    Args:
        num_frames: frames per clip (``clip_len`` of the sampler); the input
            must have exactly this many.
        arch, img_size, patch_size, in_channels, drop_path_rate: see :class:`dyt_mm.DyTViT`.
        variant, adapter, dispatch, freeze_base: likewise.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
        **vit_options: what a pre-trained family needs (``num_reg_tokens``,
            ``layer_scale``, ``pre_norm``, ``mlp_act``, ``rope_ref_grid``, ...;
            see :class:`dyt_mm.DyTViT`).
    """

    def __init__(self, arch='base', img_size=224, patch_size: int = 16, in_channels: int = 3,
                 num_frames: int = 8, drop_path_rate: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER, dispatch: Optional[dict] = DEFAULT_DISPATCH,
                 freeze_base: bool = True, init_cfg: Optional[dict] = None, **vit_options):
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'num_frames must be an integer >= 1, got {num_frames!r}')
        super().__init__(
            dict(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                 drop_path_rate=drop_path_rate, variant=variant, adapter=adapter,
                 dispatch=dispatch, freeze_base=freeze_base, **vit_options),
            init_cfg=init_cfg)
        self.num_frames = num_frames

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W)`` -> tokens ``(B, T, N, C)`` and masks ``(B*T, S, N_image)``.

        The masks hold one row per frame (frame ``t`` of clip ``b`` is row
        ``b * T + t``), the same layout the core gives for a batch of images.
        """
        if x.ndim != 5 or x.shape[1] != self.vit.in_channels or x.shape[2] != self.num_frames:
            raise ValueError(
                f'expected a clip batch of shape (B, {self.vit.in_channels}, '
                f'T={self.num_frames}, H, W), got {tuple(x.shape)}; num_frames must equal '
                "the sampler's clip_len")
        B, C, T, H, W = x.shape
        frames = x.transpose(1, 2).reshape(B * T, C, H, W)
        out = self.forward_dyt(frames)
        return out.tokens.reshape(B, T, *out.tokens.shape[1:]), out.masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_masks(x)[0]

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        return torch.randn(batch_size, self.vit.in_channels, self.num_frames, *self.vit.img_size)
