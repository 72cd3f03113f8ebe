"""Make the pinned OpenMMLab set importable on CPU-only machines.

Two packaging problems of the pinned releases stop ``import mmseg.models`` and
``import mmaction.models`` on a machine with ``mmcv-lite`` (no compiled ops):

1. ``mmcv/ops/__init__.py`` imports every compiled op from ``mmcv._ext``; mmseg
   imports ``point_sample`` and ``sigmoid_focal_loss`` from it at module level.
   When ``mmcv._ext`` is absent we register a stand-in ``mmcv.ops`` that keeps
   the real package path (so pure-Python submodules still import), exposes the
   pure-PyTorch ``point_sample`` and answers every other name with
   ``ModuleNotFoundError``, which mmseg's optional imports already catch.
2. The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn/``; an empty
   placeholder module lets ``mmaction.models`` import.

Both are applied by ``import dyt_mm`` and do nothing when the real modules exist.
Nothing here touches ``torch.load`` defaults.

Two warnings that every import of the pinned set prints are harmless here and
silenced (only when ``dyt_mm`` is imported before the toolboxes):

* mmcv-lite's "Fail to import ``MultiScaleDeformableAttention``": that
  attention (Deformable DETR) needs compiled ops; nothing in DyT uses it;
* setuptools' "pkg_resources is deprecated", raised by mmengine's package
  utilities, which still work with the pinned setuptools.
"""
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
import warnings

_DRN = 'mmaction.models.localizers.drn'


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _CpuOnlyOps(types.ModuleType):
    """``mmcv.ops`` without compiled kernels: only pure-PyTorch members."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        if name == 'point_sample':
            from mmcv.ops.point_sample import point_sample
            return point_sample
        if name == 'sigmoid_focal_loss':
            return _sigmoid_focal_loss_unavailable
        raise ModuleNotFoundError(
            f"mmcv.ops.{name} needs mmcv's compiled ops, which mmcv-lite does "
            'not ship; install full mmcv (see docs/environment.md) to use it.')


def _sigmoid_focal_loss_unavailable(*args, **kwargs):
    raise RuntimeError('sigmoid_focal_loss needs compiled mmcv ops; use the '
                       "pure-PyTorch focal loss (use_sigmoid=True) or full mmcv.")


def _install_mmcv_ops_stand_in() -> None:
    if 'mmcv.ops' in sys.modules or not _has_module('mmcv'):
        return
    if _has_module('mmcv._ext'):
        return  # real compiled mmcv: leave it alone
    import mmcv
    spec = importlib.util.find_spec('mmcv.ops')
    ops = _CpuOnlyOps('mmcv.ops', __doc__)
    ops.__path__ = list(spec.submodule_search_locations)
    ops.__spec__ = importlib.machinery.ModuleSpec(
        'mmcv.ops', None, is_package=True)
    ops.__spec__.submodule_search_locations = ops.__path__
    ops.__file__ = spec.origin
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops


def _install_drn_placeholder() -> None:
    if _DRN in sys.modules or not _has_module('mmaction'):
        return
    # Look on disk: find_spec() of a submodule would import mmaction.models,
    # which is exactly the import that fails.
    root = importlib.util.find_spec('mmaction').submodule_search_locations[0]
    if os.path.isdir(os.path.join(root, 'models', 'localizers', 'drn')):
        return
    placeholder = types.ModuleType(_DRN, 'Placeholder: missing from the mmaction2 1.2.0 wheel.')
    placeholder.__path__ = []
    sys.modules[_DRN] = placeholder
    sys.modules[_DRN + '.drn'] = types.ModuleType(_DRN + '.drn')
    sys.modules[_DRN + '.drn'].DRN = None


HARMLESS_WARNINGS = ('Fail to import ``MultiScaleDeformableAttention``',
                     'pkg_resources is deprecated as an API')


def apply() -> None:
    """Silence the harmless warnings; install both stand-ins if (and only if) needed."""
    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=UserWarning)
    _install_mmcv_ops_stand_in()
    _install_drn_placeholder()
