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
    """``state`` (the trainable part only) completed with the model's frozen base.

    The base comes from each DyT backbone's ``init_cfg`` (or the weights
    ``init_weights`` loaded); ``state`` must cover every trainable parameter.
    Buffers an older adapter-only checkpoint lacks keep the model's values.
    """
    for name, backbone in model.named_modules():
        if isinstance(backbone, DyTBackboneBase):
            state = dict(state, **backbone.frozen_base_for(state, name + '.' if name else ''))
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
