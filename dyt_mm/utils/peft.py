"""Adapter-only (PEFT) checkpoints: save the trainable part, load it onto the frozen base.

For ViT-B with d = 64 the trainable part (adapters, dispatchers, routers and
the task head) is a few MB instead of the 330 MB of a full checkpoint. The
dispatchers' calibrated threshold offsets (buffers, not parameters) travel
with it; a checkpoint without them gets the paper's threshold (offset 0).
"""
from typing import Dict, Set

import torch
from torch import nn

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt.calibration import is_threshold_offset
from .checkpoint import load_tensors, state_dict_of


def adapter_only_keys(model: nn.Module) -> Set[str]:
    """What an adapter-only checkpoint holds: the parameters that require grad, the saved
    buffers of the modules that own them (a trainable head's BatchNorm statistics) and the
    dispatchers' threshold offsets."""
    saved = set(model.state_dict())
    keys = {name for name, _ in model.named_buffers() if is_threshold_offset(name)}
    for prefix, module in model.named_modules():
        trainable = [name for name, p in module.named_parameters(prefix, recurse=False)
                     if p.requires_grad]
        if trainable:
            keys.update(trainable)
            keys.update(name for name, _ in module.named_buffers(prefix, recurse=False))
    return keys & saved


def trainable_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The adapter-only part of ``model``'s state (:func:`adapter_only_keys`), detached."""
    keys = adapter_only_keys(model)
    return {name: t.detach().clone() for name, t in model.state_dict().items() if name in keys}


def complete_trainable_state(model: nn.Module,
                             state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` (trainable parameters only) completed with the model's frozen base.

    Loads the frozen base from the backbone's ``init_cfg`` first if needed, and
    checks that ``state`` covers every trainable parameter and the statistics of their
    modules (an adapter-only checkpoint saved before they were kept is refused).
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
    # Offsets may be missing (older checkpoints: 0); statistics may not (the model would be
    # silently wrong).
    missing = sorted(name for name in adapter_only_keys(model)
                     if name not in state and not is_threshold_offset(name))
    if missing:
        raise ValueError(f'trainable-only checkpoint lacks {len(missing)} trainable '
                         f'parameter(s) or statistic(s) of this model: {", ".join(missing[:10])}')
    return dict(model.state_dict(), **state)


def load_trainable_checkpoint(model: nn.Module, path: str) -> None:
    """Load an adapter-only checkpoint onto a model whose base comes from ``init_cfg``.

    Works for full checkpoints too; any key the model lacks is an error.
    """
    model.load_state_dict(complete_trainable_state(model, state_dict_of(load_tensors(path))))
