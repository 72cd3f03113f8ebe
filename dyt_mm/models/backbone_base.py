"""What the three toolbox backbones share: the DyT ViT and its frozen base weights."""
from typing import Optional

import torch
from mmengine.model import BaseModule

from .dyt import DyTOutput, DyTViT


class DyTBackboneBase(BaseModule):
    """Holds one :class:`DyTViT` as ``self.vit``; the toolbox layers subclass it.

    Pre-trained base weights come from ``init_cfg=dict(type='Pretrained',
    checkpoint=PATH)`` (a file made by ``tools/convert/timm_vit_to_dyt.py``,
    or any timm/JAX ViT file). They are read with ``weights_only=True`` or
    safetensors and checked key by key; anything but the DyT parameters
    missing, or any unexpected or mis-shaped key, is an error, never a silent
    partial load.
    """

    def __init__(self, vit_cfg: dict, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.vit = DyTViT(**vit_cfg)

    @property
    def pretrained_path(self) -> Optional[str]:
        cfg = self.init_cfg if isinstance(self.init_cfg, dict) else None
        if cfg and cfg.get('type') == 'Pretrained':
            return cfg['checkpoint']
        return None

    def init_weights(self) -> None:
        if self.pretrained_path is not None:
            self.vit.load_pretrained(self.pretrained_path)
            self.is_init = True
        else:
            super().init_weights()

    def forward_dyt(self, x) -> DyTOutput:
        return self.vit(x)

    def example_input(self, batch_size: int = 1):
        """A random input of the backbone's native size (for FLOPs and speed tools)."""
        return torch.randn(batch_size, self.vit.in_channels, *self.vit.img_size)
