"""Image classification with DyT (registers into mmpretrain)."""
import dyt_mm  # noqa: F401  (compatibility layer first)

from ..data import LoadCheckedImage  # noqa: F401
from ..engine import DyTHook, DyTRunner  # noqa: F401
from .backbone import DyTSwinTransformer, DyTVisionTransformer
from .classifier import DyTImageClassifier
from .datasets import SVHN, VTAB1K_TASKS, VTAB1k

__all__ = [
    'DyTVisionTransformer', 'DyTSwinTransformer', 'DyTImageClassifier', 'VTAB1k', 'SVHN',
    'VTAB1K_TASKS'
]
