"""Loading third-party weights into a DyT network: the layer above the networks.

Reading is :mod:`dyt_mm.utils.checkpoint`'s (tensors only: timm .pth/.safetensors,
Google/JAX .npz), renaming :mod:`.weight_names`' (dict in, dict out), and fitting the
tensors to one network its own :meth:`~.network.DyTNetwork.checkpoint_filter`. This
module only uses what :class:`~.network.DyTNetwork` declares, so it serves every
network, and no network imports it.
"""
import inspect
import os
from typing import Mapping, Sequence

from ...utils.checkpoint import (StateDict, atomic_save, compare_states, describe_mismatch,
                                 load_tensors, read_weights_and_meta, state_dict_of,
                                 weights_and_meta)
from .network import DYT_PARAM_KEYS, DyTNetwork
from .weight_names import to_backbone_names, to_vit_names


def load_pretrained(network: DyTNetwork, source) -> None:
    """Load frozen base weights into ``network``: a path or a state dict in timm/JAX/EVA/Swin
    or DyT naming (a whole-model checkpoint keeps its backbone).

    Raises ValueError naming missing, unexpected and mis-shaped keys (only the DyT
    parameters may be missing), and naming any option that a converted file was made for
    and ``network`` is not built with (see :func:`check_recorded_options`).
    """
    network.load_state_dict(convert_for(network, source), strict=False)


def convert_for(network: DyTNetwork, source) -> StateDict:
    """Read ``source`` (path or state dict), rename, fit to ``network``, check; the tensors
    ``network.load_state_dict(..., strict=False)`` takes."""
    where = source if isinstance(source, str) else 'the given state dict'
    if isinstance(source, str):
        state, meta = read_weights_and_meta(source)
    else:
        state, meta = weights_and_meta(source, where)
    state = network.checkpoint_filter(to_vit_names(state))
    problems = describe_mismatch(*compare_states(network.state_dict(), state,
                                                 network.is_dyt_param))
    if problems:
        raise ValueError(f'pre-trained weights in {where} do not fit this '
                         f'{network.describe()}: {problems}')
    check_recorded_options(network, meta, where)
    return state


def check_recorded_options(network: DyTNetwork, meta: Mapping, where: str) -> None:
    """Compare what ``tools/convert/timm_vit_to_dyt.py`` recorded in ``meta['vit']`` (the
    options the weights need, defaults left out) with ``network.weight_options()``.

    These options (CLIP's GELU or QuickGELU, a norm's eps, EVA's RoPE grid) leave every
    name and shape alone, so weights loaded with the wrong one would compute something
    else without a word.
    """
    recorded = meta.get('vit')
    if not isinstance(recorded, Mapping):
        return  # not a converted file: nothing recorded to compare
    defaults = inspect.signature(type(network)).parameters
    for name, value in network.weight_options().items():
        wanted = recorded.get(name, defaults[name].default)
        if _comparable(wanted) != _comparable(value):
            family = f' ({meta["family"]} family)' if meta.get('family') else ''
            raise ValueError(
                f'pre-trained weights in {where} were converted for {name}={wanted!r}'
                f'{family}, but this {network.describe()} is configured with {name}={value!r}; '
                f'set {name}={wanted!r} in the backbone config, or convert the weights again '
                f'for {name}={value!r}')


def _comparable(value):
    # a recorded pair may come back as a list or tuple
    return tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def export_backbone(checkpoint_path: str, out_path: str, overwrite: bool = False) -> int:
    """Write the pre-trained (non-DyT) backbone weights of a training checkpoint.

    The output holds tensors only and loads with ``weights_only=True``, so it
    can serve as a backbone's ``init_cfg`` checkpoint. Returns the tensor count.
    """
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; not overwriting it')
    state = to_backbone_names(state_dict_of(load_tensors(checkpoint_path), checkpoint_path))
    state = {k: v for k, v in state.items() if not any(key in '.' + k for key in DYT_PARAM_KEYS)}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    atomic_save({'state_dict': state, 'meta': {'source': os.path.basename(checkpoint_path)}},
                out_path)
    return len(state)
