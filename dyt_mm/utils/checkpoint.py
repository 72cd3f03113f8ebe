"""Reading checkpoints without running code from them.

Third-party weights go through ``torch.load(weights_only=True)`` or
safetensors (:mod:`dyt_mm.models.dyt.pretrained`). mmengine's own training
checkpoints also hold a ``message_hub`` of ``HistoryBuffer`` objects, numpy
scalars and the like, which ``weights_only=True`` refuses. To *test* or
*export* such a file we only need its tensors, so :func:`load_tensors` reads it
with an unpickler that rebuilds tensors and containers and replaces every other
object by an inert placeholder: no class or function from the file is ever
imported or called. Only resuming a run (:class:`dyt_mm.engine.DyTRunner`)
unpickles its own checkpoint fully, since it needs the optimizer and the logs.
"""
import os
import pickle
import types
from contextlib import contextmanager
from typing import Any, Dict

import torch

_ALLOWED_GLOBALS = {
    ('collections', 'OrderedDict'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('torch._utils', '_rebuild_parameter_with_state'),
    ('torch', 'Size'),
}


class Omitted:
    """Stands in for any object of a checkpoint that is not a tensor or container."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Omitted()

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return '<omitted>'


class _TensorOnlyUnpickler(pickle.Unpickler):

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS or (
                module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        return Omitted


_tensor_only_pickle = types.SimpleNamespace(
    Unpickler=_TensorOnlyUnpickler,
    load=lambda f, **kw: _TensorOnlyUnpickler(f, **kw).load(),
    __name__='dyt_mm_tensor_only_pickle')


def load_tensors(path: str, map_location='cpu') -> Dict[str, Any]:
    """Tensors, containers and plain values of a checkpoint; other objects omitted."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_tensor_only_pickle)


def state_dict_of(checkpoint: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    state = checkpoint.get('state_dict', checkpoint)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


@contextmanager
def full_unpickling():
    """Let ``torch.load`` unpickle fully inside this block only (resume)."""
    key = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
    old = os.environ.get(key)
    os.environ[key] = '1'
    try:
        yield
    finally:
        if old is None:
            del os.environ[key]
        else:
            os.environ[key] = old


def export_backbone(checkpoint_path: str, out_path: str, overwrite: bool = False) -> int:
    """Write the pre-trained (non-DyT) backbone weights of a training checkpoint.

    The output holds tensors only and loads with ``weights_only=True``, so it
    can serve as a backbone's ``init_cfg`` checkpoint. Returns the tensor count.
    """
    from ..models.dyt.pretrained import to_backbone_names
    from ..models.dyt.vit import DYT_PARAM_KEYS
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; not overwriting it')
    state = to_backbone_names(state_dict_of(load_tensors(checkpoint_path)))
    state = {k: v for k, v in state.items() if not any(key in '.' + k for key in DYT_PARAM_KEYS)}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    torch.save({'state_dict': state, 'meta': {'source': os.path.basename(checkpoint_path)}},
               out_path)
    return len(state)
