"""The BEiT-style multi-scale pyramid over single-scale ViT maps."""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

RESCALES = (4, 2, 1, 0.5, 0.25)


@MODELS.register_module()
class ViTFeaturePyramid(BaseModule):
    """One ViT map per level, resampled to strides p/4, p/2, p, 2p (by default).

    * x4: two 2x2 stride-2 transposed convolutions with a GELU between them;
    * x2: one transposed convolution;
    * x1: identity;
    * /2 (/4): 2x2 (4x4) max-pooling.

    This is the pyramid of the DyT segmentation code. mmseg's
    ``Feature2Pyramid`` is the same except that it always puts a norm layer
    before the GELU (as BEiT did); ``norm_cfg=dict(type='BN')`` gives that
    variant here.

    Args:
        embed_dims: channels of the ViT maps (kept at every level).
        rescales: one scale factor per input map, each in ``RESCALES``.
        norm_cfg: optional norm layer before the GELU of the x4 branch.
    """

    def __init__(self, embed_dims: int, rescales: Sequence[float] = (4, 2, 1, 0.5),
                 norm_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        bad = [s for s in rescales if s not in RESCALES]
        if not rescales or bad:
            raise ValueError(f'rescales must be a non-empty sequence of {RESCALES}, got '
                             f'{tuple(rescales)}')
        self.rescales = tuple(rescales)
        self.levels = nn.ModuleList(self._level(s, embed_dims, norm_cfg) for s in rescales)

    @staticmethod
    def _level(scale: float, dims: int, norm_cfg: Optional[dict]) -> nn.Module:
        def up():
            return nn.ConvTranspose2d(dims, dims, kernel_size=2, stride=2)

        if scale == 4:
            norm = build_norm_layer(norm_cfg, dims)[1] if norm_cfg else nn.Identity()
            return nn.Sequential(up(), norm, nn.GELU(), up())
        if scale == 2:
            return up()
        if scale == 1:
            return nn.Identity()
        stride = int(round(1 / scale))
        return nn.MaxPool2d(kernel_size=stride, stride=stride)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.levels):
            raise ValueError(f'{type(self).__name__} has {len(self.levels)} levels (rescales '
                             f'{self.rescales}) but got {len(inputs)} feature maps; give the '
                             'backbone as many out_indices as rescales')
        return tuple(level(x) for level, x in zip(self.levels, inputs))
