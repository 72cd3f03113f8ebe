"""What the toolbox backbones share: the DyT network and its frozen base weights."""
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModule

from .dyt import DyTOutput, DyTViT


class DyTBackboneBase(BaseModule):
    """Holds one DyT network (class ``network``: :class:`DyTViT` unless a subclass says
    otherwise, e.g. :class:`~.dyt.swin.DyTSwin`) as ``self.vit``; the toolbox layers
    subclass it. (``vit`` is the name in every saved state dict, whatever the network.)

    Pre-trained base weights come from ``init_cfg=dict(type='Pretrained',
    checkpoint=PATH)`` (a file made by ``tools/convert/timm_vit_to_dyt.py``,
    or any timm/JAX ViT or timm Swin file). They are read with ``weights_only=True`` or
    safetensors and checked key by key; anything but the DyT parameters
    missing, or any unexpected or mis-shaped key, is an error, never a silent
    partial load.

    An adapter-only checkpoint (``DyTHook(save_trainable_only=True)``) holds
    no base weights. Whoever loads it (the Runner, mmengine's
    ``load_checkpoint`` behind mmpretrain's ``get_model`` and the toolboxes'
    inferencers, or a plain ``load_state_dict``), the backbone fills the base
    in first: a load hook sees a state dict with DyT entries of this backbone
    but none of its base, and adds the base from ``init_cfg``.

    Token merging (``merge=dict(r=R)``, ToMe) is for backbones that set
    ``merges_tokens``: it leaves no token grid to make maps of.
    """
    merges_tokens = False

    network = DyTViT

    def __init__(self, vit_cfg: dict, init_cfg: Optional[dict] = None):
        if vit_cfg.get('merge') is not None and not self.merges_tokens:
            raise ValueError(
                f'{type(self).__name__} cannot merge tokens (merge={vit_cfg["merge"]!r}): '
                'token merging (ToMe) is for classification (DyTVisionTransformer) only, as '
                'segmentation and video need every patch token; remove merge from the config')
        super().__init__(init_cfg=init_cfg)
        self.vit = self.network(**vit_cfg)
        self.register_load_state_dict_pre_hook(self._add_frozen_base)

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

    def base_keys(self) -> List[str]:
        """State-dict keys of the frozen pre-trained part (all but the DyT parameters)."""
        return ['vit.' + k for k in self.vit.state_dict() if not self.vit.is_dyt_param(k)]

    def frozen_base_for(self, state: Dict[str, torch.Tensor],
                        prefix: str = '') -> Dict[str, torch.Tensor]:
        """The base entries ``state`` lacks, if it is an adapter-only state of this backbone.

        ``prefix`` is this backbone's name in ``state`` (``'backbone.'`` in a
        whole model's). Returns nothing for a full state or one without this
        backbone. The base is the one loaded by ``init_weights`` if that ran,
        else it is read from ``init_cfg`` now.
        """
        base_keys = [prefix + k for k in self.base_keys()]
        has_backbone = any(k.startswith(prefix) for k in state)
        if not has_backbone or any(k in state for k in base_keys):
            return {}
        if not self.is_init:
            if self.pretrained_path is None:
                raise ValueError(
                    'this checkpoint holds only the trainable DyT parameters; the frozen base '
                    "must come from the backbone's init_cfg=dict(type='Pretrained', "
                    "checkpoint=PATH), which this model's config does not set")
            self.init_weights()
        own = self.state_dict()
        return {prefix + k: own[k] for k in self.base_keys()}

    @staticmethod
    def _add_frozen_base(module, state_dict, prefix, *args) -> None:
        # a load_state_dict pre-hook may complete the state dict in place
        state_dict.update(module.frozen_base_for(state_dict, prefix))

    def forward_dyt(self, x) -> DyTOutput:
        return self.vit(x)

    def example_input(self, batch_size: int = 1):
        """A random input of the backbone's native size (for FLOPs and speed tools)."""
        return torch.randn(batch_size, self.vit.in_channels, *self.vit.img_size)
