"""ViTDet's simple feature pyramid: one stride-16 map up- and down-sampled."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from torch import nn

SCALES = (4.0, 2.0, 1.0, 0.5)


@MODELS.register_module('LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map: ViTDet's norm in the pyramid
    and (``norm_cfg=dict(type='LN2d')``) in its RoI heads."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's pyramid (Li et al., 2022) from the last map of a plain ViT.

    For a stride-``p`` map of ``C`` channels, each scale factor gives one level:

    * x4: 2x2 transposed conv to C/2, LayerNorm, GELU, 2x2 transposed conv to C/4;
    * x2: 2x2 transposed conv to C/2;
    * x1: identity;  /2: 2x2 max-pooling;

    then a 1x1 conv and a 3x3 conv to ``out_channels``, each followed by a
    LayerNorm. ``num_outs`` above the number of scales adds max-pooled
    (kernel 1, stride 2) levels on top, as the RPN's stride-64 level.

    Args:
        in_channels: channels ``C`` of the ViT map.
        out_channels: channels of every level (256 for mmdet's Mask R-CNN heads).
        scale_factors: up/down-sampling of each level, from ``SCALES``.
        num_outs: number of output levels (5 for Mask R-CNN: strides 4-64).
    """

    def __init__(self, in_channels: int = 768, out_channels: int = 256,
                 scale_factors: Sequence[float] = SCALES, num_outs: int = 5,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        bad = [s for s in scale_factors if s not in SCALES]
        if not scale_factors or bad:
            raise ValueError(f'scale_factors must be a non-empty sequence of {SCALES}, got '
                             f'{tuple(scale_factors)}')
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs ({num_outs}) must be at least the number of scale '
                             f'factors ({len(scale_factors)})')
        self.num_outs = num_outs
        self.levels = nn.ModuleList()
        for scale in scale_factors:
            resample, channels = self._resample(scale, in_channels)
            self.levels.append(nn.Sequential(
                resample,
                nn.Conv2d(channels, out_channels, 1, bias=False), LayerNorm2d(out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                LayerNorm2d(out_channels)))

    @staticmethod
    def _resample(scale: float, dims: int) -> Tuple[nn.Module, int]:
        def up(c_in: int, c_out: int) -> nn.Module:
            return nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)

        if scale == 4.0:
            return nn.Sequential(up(dims, dims // 2), LayerNorm2d(dims // 2), nn.GELU(),
                                 up(dims // 2, dims // 4)), dims // 4
        if scale == 2.0:
            return up(dims, dims // 2), dims // 2
        if scale == 1.0:
            return nn.Identity(), dims
        return nn.MaxPool2d(kernel_size=2, stride=2), dims

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != 1:
            raise ValueError(f'{type(self).__name__} builds its pyramid from one map (the '
                             f"ViT's last), got {len(inputs)} maps")
        outs = [level(inputs[0]) for level in self.levels]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
