"""Object detection and instance segmentation with DyT (registers into mmdet)."""
import dyt_mm  # noqa: F401  (compatibility layer first)

from ..engine import DyTHook, DyTRunner  # noqa: F401
from .backbone import DyTDetViT
from .datasets import CheckedCocoDataset
from .detector import DyTMaskRCNN
from .neck import SimpleFeaturePyramid

__all__ = ['DyTDetViT', 'SimpleFeaturePyramid', 'DyTMaskRCNN', 'CheckedCocoDataset']
