"""What the toolbox backbones share: building the DyT network from options, its forward,
and its frozen base weights."""
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModule

from .dyt import DyTOutput, DyTViT
from .dyt.pretrained import load_pretrained


class DyTBackboneBase(BaseModule):
    """Holds one DyT network (class ``network``: :class:`DyTViT` unless a subclass says
    otherwise, e.g. :class:`~.dyt.swin.DyTSwin`) as ``self.vit``; the toolbox layers
    subclass it. (``vit`` is the name in every saved state dict, whatever the network.)

    A toolbox backbone says only what differs from the network:

    * ``default_options``: its own defaults for network options (a detection
      ViT is built at 1024 px); every other option keeps the network's default;
    * ``fixed_options``: options its output format needs (segmentation maps
      drop the class token, so the ViT must have one); a config that sets one
      is refused;
    * :meth:`format_output`: the features its toolbox's necks and heads read,
      and :meth:`network_input` where its input is not a batch of images.

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
    but none of its base, and adds the base from ``init_cfg``. (What such a
    checkpoint holds of the whole model, and the strict checks of a load, are
    :mod:`dyt_mm.utils.peft`'s; it asks each backbone for its base with
    :meth:`frozen_base_for`, as the load hook does.)

    Token merging (``merge=dict(r=R)``, ToMe) is for backbones that set
    ``merges_tokens``: it leaves no token grid to make maps of.

    Args:
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` for the frozen base.
        **options: the network's options (:class:`dyt_mm.DyTViT`: ``arch``,
            ``img_size``, ``patch_size``, ``in_channels``, ``drop_path_rate``,
            ``variant``, ``adapter``, ``dispatch``, ``freeze_base``, and what a
            pre-trained family needs: ``num_reg_tokens``, ``layer_scale``,
            ``pre_norm``, ``mlp_act``, ``rope_ref_grid``, ...).
    """
    merges_tokens = False

    network = DyTViT
    default_options: Dict[str, Any] = {}
    fixed_options: Dict[str, Any] = {}

    def __init__(self, init_cfg: Optional[dict] = None, **options):
        if options.get('merge') is not None and not self.merges_tokens:
            raise ValueError(
                f'{type(self).__name__} cannot merge tokens (merge={options["merge"]!r}): '
                'token merging (ToMe) is for classification (DyTVisionTransformer) only, as '
                'segmentation and video need every patch token; remove merge from the config')
        refused = sorted(set(options) & set(self.fixed_options))
        if refused:
            fixed = ', '.join(f'{k}={v!r}' for k, v in self.fixed_options.items())
            raise TypeError(f'{type(self).__name__} sets {fixed} itself (its output needs '
                            f'them); remove {", ".join(refused)} from the config')
        super().__init__(init_cfg=init_cfg)
        self.vit = self.network(**{**self.default_options, **options, **self.fixed_options})
        self.register_load_state_dict_pre_hook(self._add_frozen_base)

    @property
    def pretrained_path(self) -> Optional[str]:
        cfg = self.init_cfg if isinstance(self.init_cfg, dict) else None
        if cfg and cfg.get('type') == 'Pretrained':
            return cfg['checkpoint']
        return None

    def init_weights(self) -> None:
        if self.pretrained_path is not None:
            load_pretrained(self.vit, self.pretrained_path)
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

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """The batch of images the network runs on (a video backbone folds in the frames)."""
        return x

    @abstractmethod
    def format_output(self, out: DyTOutput, x: torch.Tensor) -> Any:
        """The toolbox's features of the network's output ``out`` for the input ``x``."""

    def forward_with_masks(self, x: torch.Tensor) -> Tuple[Any, torch.Tensor]:
        """The toolbox's features and the dispatch masks (the DyT losses need both)."""
        out = self.vit(self.network_input(x))
        return self.format_output(out, x), out.masks

    def forward(self, x: torch.Tensor) -> Any:
        return self.forward_with_masks(x)[0]

    def example_input(self, batch_size: int = 1):
        """A random input of the backbone's native size (for FLOPs and speed tools)."""
        return torch.randn(batch_size, self.vit.in_channels, *self.vit.img_size)
