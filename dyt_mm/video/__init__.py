"""Video recognition with DyT (registers into mmaction)."""
import dyt_mm  # noqa: F401  (compatibility layer first)

from ..engine import DyTHook, DyTRunner  # noqa: F401
from .backbone import DyTVideoViT
from .datasets import CheckedVideoDataset
from .head import TemporalQueryHead
from .recognizer import DyTRecognizer3D
from .transforms import CheckVideoLength

__all__ = [
    'DyTVideoViT', 'TemporalQueryHead', 'DyTRecognizer3D', 'CheckedVideoDataset',
    'CheckVideoLength'
]
