"""Adapter-only (PEFT) checkpoints: save the trainable part, load it onto the frozen base.

For ViT-B with d = 64 the trainable part (adapters, dispatchers, routers and
the task head) is a few MB instead of the 330 MB of a full checkpoint.
"""
from typing import Dict

import torch
from torch import nn

from ..models.backbone_base import DyTBackboneBase
from .checkpoint import load_tensors, state_dict_of


def trainable_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The parameters of ``model`` that require grad, detached, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def complete_trainable_state(model: nn.Module,
                             state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` (trainable parameters only) completed with the model's frozen base.

    Loads the frozen base from the backbone's ``init_cfg`` first if needed, and
    checks that ``state`` covers every trainable parameter.
    """
    backbones = [m for m in model.modules() if isinstance(m, DyTBackboneBase)]
    for backbone in backbones:
        if backbone.is_init:
            continue
        if backbone.pretrained_path is None:
            raise ValueError(
                'this checkpoint holds only the trainable DyT parameters; the frozen base '
                "must come from the backbone's init_cfg=dict(type='Pretrained', "
                "checkpoint=PATH), which this model's config does not set")
        backbone.init_weights()
    missing = [name for name, p in model.named_parameters()
               if p.requires_grad and name not in state]
    if missing:
        raise ValueError(f'trainable-only checkpoint lacks {len(missing)} trainable '
                         f'parameter(s) of this model: {", ".join(missing[:10])}')
    return dict(model.state_dict(), **state)


def load_trainable_checkpoint(model: nn.Module, path: str) -> None:
    """Load an adapter-only checkpoint onto a model whose base comes from ``init_cfg``.

    Works for full checkpoints too; any key the model lacks is an error.
    """
    model.load_state_dict(complete_trainable_state(model, state_dict_of(load_tensors(path))))
