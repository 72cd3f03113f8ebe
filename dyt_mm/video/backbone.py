"""mmaction backbone: the DyT core applied to every frame of a clip."""

import torch
from mmaction.registry import MODELS

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DyTOutput


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
        init_cfg, **options: see :class:`~dyt_mm.models.backbone_base.DyTBackboneBase`.
    """

    def __init__(self, num_frames: int = 8, **options):
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'num_frames must be an integer >= 1, got {num_frames!r}')
        super().__init__(**options)
        self.num_frames = num_frames

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` clips -> ``(B*T, C, H, W)`` frames."""
        if x.ndim != 5 or x.shape[1] != self.vit.in_channels or x.shape[2] != self.num_frames:
            raise ValueError(
                f'expected a clip batch of shape (B, {self.vit.in_channels}, '
                f'T={self.num_frames}, H, W), got {tuple(x.shape)}; num_frames must equal '
                "the sampler's clip_len")
        B, C, T, H, W = x.shape
        return x.transpose(1, 2).reshape(B * T, C, H, W)

    def format_output(self, out: DyTOutput, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, T, N, C)``; the masks ``(B*T, S, N_image)`` hold one row per
        frame (frame ``t`` of clip ``b`` is row ``b * T + t``), the same layout the core
        gives for a batch of images."""
        B, T = x.shape[0], x.shape[2]
        return out.tokens.reshape(B, T, *out.tokens.shape[1:])

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        return torch.randn(batch_size, self.vit.in_channels, self.num_frames, *self.vit.img_size)
