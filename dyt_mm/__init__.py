"""dyt-mm: Dynamic Tuning (DyT) for mmpretrain, mmsegmentation, mmaction2 and mmdetection.

``import dyt_mm`` first makes the pinned OpenMMLab set importable on CPU-only
machines (see :mod:`dyt_mm.compat`), then exposes the plain-PyTorch core. The
toolbox layers register themselves when imported: ``dyt_mm.cls`` (mmpretrain),
``dyt_mm.seg`` (mmseg), ``dyt_mm.video`` (mmaction) and ``dyt_mm.det`` (mmdet); configs name them in
``custom_imports``. From then on mmengine's ``load_checkpoint`` (``get_model``,
inferencers, ``init_cfg``) reads local files without unpickling code.
"""
from . import compat
from .utils.checkpoint import register_safe_mmengine_loader

compat.apply()
register_safe_mmengine_loader()  # mmengine's load_checkpoint reads tensors only

from .models.dyt import (DyTObjective, DyTViT, ViTFlops, calibrate_budget,  # noqa: E402
                         calibrate_capacities, capacity_overflow, dyt_mode,
                         reset_capacity_overflow, set_capacities, set_mode, set_tau)

__version__ = '0.1.0'
__all__ = [
    'DyTViT', 'DyTObjective', 'ViTFlops', 'set_mode', 'dyt_mode', 'set_tau', 'calibrate_budget',
    'set_capacities', 'calibrate_capacities', 'capacity_overflow', 'reset_capacity_overflow'
]
