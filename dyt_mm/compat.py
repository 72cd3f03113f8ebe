"""Make the pinned OpenMMLab set importable on CPU-only machines.

Two packaging problems of the pinned releases stop ``import mmseg.models`` and
``import mmaction.models`` on a machine with ``mmcv-lite`` (no compiled ops):

1. Every module of ``mmcv.ops`` loads the compiled kernels of ``mmcv._ext``
   at import time, and mmseg and mmdet import ``mmcv.ops`` at module level.
   When ``mmcv._ext`` is absent we register :mod:`dyt_mm.mmcv_ext` in its
   place: torchvision computes the kernels that Mask R-CNN runs (``nms``,
   ``roi_align``), every other kernel raises ``ModuleNotFoundError`` naming
   it when called.
2. The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn/``; an empty
   placeholder module lets ``mmaction.models`` import.

Both are applied by ``import dyt_mm`` (before any toolbox) and do nothing when
the real modules exist.
Nothing here touches ``torch.load`` defaults.

One warning that every import of the pinned set prints is harmless here and
silenced (only when ``dyt_mm`` is imported before the toolboxes): setuptools'
"pkg_resources is deprecated", raised by mmengine's package utilities, which
still work with the pinned setuptools.
"""
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


def _install_mmcv_ext_stand_in() -> None:
    if 'mmcv._ext' in sys.modules or not _has_module('mmcv'):
        return
    if _has_module('mmcv._ext'):
        return  # real compiled mmcv: leave it alone
    from .mmcv_ext import stand_in
    sys.modules['mmcv._ext'] = stand_in()


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


HARMLESS_WARNINGS = ('pkg_resources is deprecated as an API', )


def apply() -> None:
    """Silence the harmless warnings; install both stand-ins if (and only if) needed."""
    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=UserWarning)
    _install_mmcv_ext_stand_in()
    _install_drn_placeholder()
