"""Reading and writing checkpoints without ever running code from them.

Every checkpoint this project reads goes through one restricted unpickler: it
rebuilds tensors, containers, numpy arrays and the few mmengine types a
training checkpoint holds (the message hub's ``HistoryBuffer``), and nothing
else. No other class or function named in a file is imported or called, so a
crafted ``.pth`` cannot execute code, whichever path reads it:

* :func:`load_tensors` -- tests, ``load_from``, analysis tools, init_cfg and
  mmengine's own ``load_checkpoint`` (see :func:`register_safe_mmengine_loader`):
  an unknown object becomes an inert :class:`Omitted` placeholder, since only
  the tensors are used.
* :func:`load_training_state` -- resuming a run: an unknown object is an error,
  because the optimizer, schedulers and logs must come back exactly and a
  checkpoint written by mmengine's Runner holds no other objects.

Third-party weights (:func:`read_weights`) may also be ``.safetensors`` or
Google/JAX ``.npz`` files, which hold no code. Files that are not checkpoints at
all (empty, truncated, random bytes) raise :class:`CheckpointError` naming the
file. :func:`compare_states` says how a state dict fails to fit a model's. Writes are atomic
(:func:`atomic_save`): a kill mid-write leaves the old file or the new one.
"""
import contextlib
import errno
import functools
import os
import pickle
import types
from typing import Any, Callable, Dict, List, Mapping, Tuple

import numpy as np
import torch

StateDict = Dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A file that is not a checkpoint this project can read."""


class Omitted:
    """Stands in for an object of a checkpoint that is not a tensor or container."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Omitted()

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return '<omitted>'


def _history_buffer():
    from mmengine.logging.history_buffer import HistoryBuffer
    return HistoryBuffer


def _history_buffer_statistic(owner, name: str, strict: bool):
    """The only ``getattr`` a checkpoint may do: a HistoryBuffer statistics method.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as
    ``getattr(HistoryBuffer, 'mean')`` and the like; a free ``getattr`` would
    let a file reach any attribute of any allowed object.
    """
    buffer_cls = _history_buffer()
    allowed = {'min', 'max', 'current', 'mean', *buffer_cls._statistics_methods}
    if owner is buffer_cls and name in allowed:
        return getattr(owner, name)
    if strict:
        raise _ForeignObject(f'a call getattr({getattr(owner, "__name__", owner)}, {name!r})')
    return Omitted()


def _numpy(module: str, name: str):
    import importlib
    return getattr(importlib.import_module(module), name)


# (module, name) -> how to get the object. What mmengine's Runner, torch's
# optimizers and schedulers and timm/OpenMMLab weight files really hold.
_ALLOWED_GLOBALS: Dict[tuple, Callable[[], Any]] = {
    ('collections', 'OrderedDict'): lambda: __import__('collections').OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): lambda: torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): lambda: torch._utils._rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'):
        lambda: torch._utils._rebuild_parameter_with_state,
    ('torch', 'Size'): lambda: torch.Size,
    ('torch', 'device'): lambda: torch.device,
    ('_codecs', 'encode'): lambda: __import__('_codecs').encode,
    ('builtins', 'set'): lambda: set,
    ('builtins', 'frozenset'): lambda: frozenset,
    ('builtins', 'slice'): lambda: slice,
    ('builtins', 'complex'): lambda: complex,
    ('mmengine.logging.history_buffer', 'HistoryBuffer'): _history_buffer,
}
for _core in ('numpy.core.multiarray', 'numpy._core.multiarray'):
    for _name in ('_reconstruct', 'scalar'):
        _ALLOWED_GLOBALS[(_core, _name)] = (lambda m=_core, n=_name: _numpy(m, n))
for _name in ('dtype', 'ndarray'):
    _ALLOWED_GLOBALS[('numpy', _name)] = (lambda n=_name: _numpy('numpy', n))
_ALIASES = {'__builtin__': 'builtins'}  # protocol-2 pickles name the Python 2 module


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED_GLOBALS`; anything else is ``Omitted`` or refused."""

    strict = False

    def find_class(self, module: str, name: str):
        module = _ALIASES.get(module, module)
        if (module, name) == ('builtins', 'getattr'):
            return functools.partial(_history_buffer_statistic, strict=self.strict)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]()
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if self.strict:
            raise _ForeignObject(f'an object of type {module}.{name}')
        return Omitted


class _StrictUnpickler(_RestrictedUnpickler):
    strict = True


class _ForeignObject(pickle.UnpicklingError):
    """A global outside the allow-list in a file that must hold only training state."""


def _pickle_module(unpickler: type) -> types.SimpleNamespace:
    return types.SimpleNamespace(Unpickler=unpickler,
                                 load=lambda f, **kw: unpickler(f, **kw).load(),
                                 __name__=f'dyt_mm_{unpickler.__name__}')


def _not_a_checkpoint(path: str, err: BaseException) -> CheckpointError:
    with open(path, 'rb') as f:
        header = f.read(4)
    if not header:
        reason = 'the file is empty'
    elif header == b'PK\x03\x04':  # torch's zip format, cut short (an interrupted copy?)
        reason = f'its zip archive is truncated or damaged: {type(err).__name__}: {err}'
    else:
        # Random or text bytes fail in whichever way the legacy unpickler trips first
        # (UnpicklingError, UnicodeDecodeError, EOFError, ...); say what the file is not.
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ''
        reason = (f'it is neither a torch zip archive nor a pickle: '
                  f'{type(err).__name__}: {first_line[:200]}')
    return CheckpointError(f'{path} is not a valid checkpoint file ({reason}); expected a '
                           'PyTorch checkpoint saved with torch.save (.pth), or a .safetensors '
                           'or .npz file where weights are converted')


def _load(path: str, unpickler: type, map_location) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_pickle_module(unpickler))
    except _ForeignObject as err:
        raise CheckpointError(
            f'{path} holds {err}, which a training checkpoint written by '
            "mmengine's Runner does not; refusing to unpickle it. Only a run's own "
            'checkpoints can be resumed; to start from the weights of another file use '
            'load_from (tensors only)') from None
    except Exception as err:  # every way a file can fail to be a torch checkpoint
        raise _not_a_checkpoint(path, err) from err


def load_tensors(path: str, map_location='cpu') -> Any:
    """A checkpoint's tensors, containers and plain values; other objects omitted."""
    return _load(path, _RestrictedUnpickler, map_location)


def load_training_state(path: str, map_location='cpu') -> Any:
    """A training checkpoint of mmengine's Runner, for resuming; foreign objects refused."""
    return _load(path, _StrictUnpickler, map_location)


def state_dict_of(checkpoint: Any, path: str = 'the checkpoint') -> Dict[str, torch.Tensor]:
    """The tensors of ``checkpoint['state_dict']`` (or of a bare state dict)."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint '
                              'dict or a state dict')
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def register_safe_mmengine_loader() -> None:
    """Route mmengine's ``load_checkpoint`` for local files through :func:`load_tensors`.

    mmpretrain's ``get_model(pretrained=...)``, the inferencers and any
    ``init_cfg=dict(type='Pretrained')`` of a toolbox module read local files
    with mmengine's ``CheckpointLoader``; registered for the empty prefix, our
    loader replaces its plain ``torch.load`` (which either refuses mmengine's
    own checkpoints under ``weights_only`` or, forced, runs any pickle).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename: str, map_location=None):
        return load_tensors(os.path.expanduser(filename), map_location=map_location)

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


PARTIAL_SUFFIX = '.partial'  # a file being written; published by an atomic rename


class CheckpointWriteError(OSError):
    """A checkpoint (or the pointer to it) could not be written; the earlier files are intact."""


@contextlib.contextmanager
def writing(path: str):
    """Writes of ``path + PARTIAL_SUFFIX`` that fail (a full disk, a quota, no permission)
    end in a :class:`CheckpointWriteError` naming ``path``; the partial file is removed, so
    nothing (``--resume`` included) can take it for a checkpoint."""
    try:
        yield
    except OSError as err:
        if isinstance(err, CheckpointWriteError):
            raise
        with contextlib.suppress(OSError):
            os.remove(path + PARTIAL_SUFFIX)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = f'the file system is full ({err.strerror})'
        else:
            reason = f'{type(err).__name__}: {err}'
        raise CheckpointWriteError(
            err.errno, f'could not write {path}: {reason}. Nothing was replaced: the files '
            'saved before it are intact; make room and continue with --resume') from err


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` so that a kill leaves the old file or the new one."""
    with writing(path):
        with open(path + PARTIAL_SUFFIX, 'wb') as f:
            torch.save(obj, f)
        publish(path)


def atomic_write_text(text: str, path: str) -> None:
    """Write a small text file (``last_checkpoint``) so that a kill leaves old or new."""
    with writing(path):
        with open(path + PARTIAL_SUFFIX, 'w') as f:
            f.write(text)
        publish(path)


def publish(path: str) -> None:
    """Sync ``path + PARTIAL_SUFFIX`` to disk and rename it to ``path`` (atomic)."""
    partial = path + PARTIAL_SUFFIX
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)


def read_weights(path: str) -> StateDict:
    """Tensors of a weight file (``.pth``, ``.safetensors``, ``.npz``) under their own names,
    never executing code from it (see :func:`read_weights_and_meta`)."""
    return read_weights_and_meta(path)[0]


def read_weights_and_meta(path: str) -> Tuple[StateDict, dict]:
    """Tensors of a weight file and the ``meta`` dict saved beside them (empty if none).

    A file that is not a checkpoint of its kind raises ``CheckpointError``
    naming it (never a loader's advice to unpickle it unsafely).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if path.endswith(('.safetensors', '.npz')):
        try:
            if path.endswith('.safetensors'):
                from safetensors.torch import load_file
                return load_file(path), {}
            with np.load(path, allow_pickle=False) as npz:
                return {k: torch.from_numpy(npz[k]) for k in npz.files}, {}
        except Exception as err:  # SafetensorError; np.load's errors for a non-zip file
            # np.load's message advises loading "unsafely" (pickles): never repeat that
            reason = ('not a zip archive of arrays' if path.endswith('.npz')
                      else f'{type(err).__name__}: {str(err)[:200]}')
            raise CheckpointError(f'{path} is not a valid {os.path.splitext(path)[1]} weight '
                                  f'file ({reason})') from err
    return weights_and_meta(load_tensors(path), path)


def weights_and_meta(obj: Any, where: str) -> Tuple[StateDict, dict]:
    """The tensors of a loaded checkpoint (a bare state dict, or one under ``state_dict``,
    ``model`` or ``module``) and its ``meta`` dict (empty if none)."""
    meta = obj.get('meta') if isinstance(obj, Mapping) else None
    for key in ('state_dict', 'model', 'module'):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{where} holds a {type(obj).__name__}, not a state dict')
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    return state, dict(meta) if isinstance(meta, Mapping) else {}


def compare_states(own: StateDict, state: StateDict,
                   may_miss: Callable[[str], bool] = lambda key: False
                   ) -> Tuple[List[str], List[str], List[str]]:
    """(missing keys, unexpected keys, mis-shaped keys) of ``state`` against ``own``.

    Keys of ``own`` for which ``may_miss`` is true are not reported missing.
    """
    missing = [k for k in own if k not in state and not may_miss(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in state if k in own and state[k].shape != own[k].shape]
    return missing, unexpected, mismatched


def describe_mismatch(missing, unexpected, mismatched) -> str:
    """One line of what :func:`compare_states` found ('' if the state fits)."""
    parts = []
    for title, keys in (('missing', missing), ('unexpected', unexpected),
                        ('mis-shaped', mismatched)):
        if keys:
            shown = ', '.join(keys[:12]) + (f' ... (+{len(keys) - 12})' if len(keys) > 12 else '')
            parts.append(f'{len(keys)} {title} key(s): {shown}')
    return '; '.join(parts)
