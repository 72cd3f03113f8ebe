"""Putting a checkpoint onto a DyT model: full or adapter-only (PEFT), strictly.

For ViT-B with d = 64 the trainable part (adapters, dispatchers, routers and
the task head) is a few MB instead of the 330 MB of a full checkpoint; the
frozen base of such an adapter-only checkpoint comes from the backbone's
``init_cfg``. Whatever the kind, a checkpoint that does not fit the model is an
error naming the keys, never a partial load onto random weights. The
dispatchers' calibrated threshold offsets (buffers, not parameters) travel
with both kinds; a checkpoint from before they existed gets the paper's
threshold (offset 0).
"""
import re
from typing import Any, Dict, Sequence, Set, Tuple

import torch
from torch import nn

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt.calibration import is_threshold_offset
from .checkpoint import (CheckpointError, compare_states, describe_mismatch, load_tensors,
                         state_dict_of)

# mmengine's default: DDP-saved names start with 'module.'
DDP_PREFIX = ((r'^module\.', ''), )


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


# The meta key that marks an adapter-only checkpoint: written and read only here.
TRAINABLE_ONLY = 'dyt_trainable_only'


def make_trainable_only(model: nn.Module, checkpoint: Dict[str, Any]) -> None:
    """Reduce an mmengine checkpoint (in place) to ``model``'s adapter-only part
    (:func:`adapter_only_keys`) and mark it so, for :func:`fit_checkpoint`."""
    kept = adapter_only_keys(model)
    checkpoint['state_dict'] = type(checkpoint['state_dict'])(
        (k, v) for k, v in checkpoint['state_dict'].items() if k in kept)
    checkpoint.setdefault('meta', {})[TRAINABLE_ONLY] = True


def is_trainable_only(checkpoint: Any) -> bool:
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return isinstance(meta, dict) and bool(meta.get(TRAINABLE_ONLY))


def complete_trainable_state(model: nn.Module,
                             state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` (the trainable part only) completed with the model's frozen base.

    The base comes from each DyT backbone's ``init_cfg`` (or the weights
    ``init_weights`` loaded); ``state`` must cover every trainable parameter
    and the statistics of their modules (an adapter-only checkpoint saved
    before those were kept is refused: the model would be silently wrong).
    Threshold offsets may be missing (older checkpoints: offset 0).
    """
    for name, backbone in model.named_modules():
        if isinstance(backbone, DyTBackboneBase):
            state = dict(state, **backbone.frozen_base_for(state, name + '.' if name else ''))
    missing = sorted(name for name in adapter_only_keys(model)
                     if name not in state and not is_threshold_offset(name))
    if missing:
        raise ValueError(f'trainable-only checkpoint lacks {len(missing)} trainable '
                         f'parameter(s) or statistic(s) of this model: {", ".join(missing[:10])}')
    return dict(model.state_dict(), **state)


def _revise(state: Dict[str, torch.Tensor],
            revise_keys: Sequence[Tuple[str, str]]) -> Dict[str, torch.Tensor]:
    for pattern, replacement in revise_keys:
        state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
    return state


def fit_checkpoint(model: nn.Module, checkpoint: Any, source: str,
                   revise_keys: Sequence[Tuple[str, str]] = DDP_PREFIX
                   ) -> Dict[str, torch.Tensor]:
    """The whole state dict of ``model`` from ``checkpoint``, or an error.

    An adapter-only checkpoint (meta ``dyt_trainable_only``) may lack the
    frozen base, which is then read from the backbone's ``init_cfg``; any
    other missing key (but a threshold offset, absent from checkpoints older
    than calibration), any unexpected or mis-shaped key, and any NaN or inf
    in a weight is a :class:`CheckpointError` naming ``source`` and the keys.
    """
    state = _revise(state_dict_of(checkpoint, source), revise_keys)
    if is_trainable_only(checkpoint):
        state = complete_trainable_state(model, state)
    problems = describe_mismatch(*compare_states(model.state_dict(), state, is_threshold_offset))
    if problems:
        kind = 'adapter-only checkpoint' if is_trainable_only(checkpoint) else 'checkpoint'
        raise CheckpointError(f'{kind} {source} does not fit the model of this config: '
                              f'{problems}')
    non_finite = [k for k, v in state.items()
                  if v.is_floating_point() and not torch.isfinite(v).all()]
    if non_finite:
        raise CheckpointError(f'checkpoint {source} holds NaN or inf in {len(non_finite)} '
                              f'tensor(s): {", ".join(non_finite[:10])}; it comes from a '
                              'diverged run and is not loaded')
    return state


def load_checkpoint_strictly(model: nn.Module, path: str) -> Dict[str, Any]:
    """Read ``path`` (tensors only) and load it onto ``model`` with :func:`fit_checkpoint`.

    Returns the checkpoint as read (its meta may interest the caller).
    """
    checkpoint = load_tensors(path)
    model.load_state_dict(fit_checkpoint(model, checkpoint, path))
    return checkpoint
