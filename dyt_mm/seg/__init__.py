"""Semantic segmentation with DyT (registers into mmseg)."""
import dyt_mm  # noqa: F401  (compatibility layer first)

from ..data import LoadCheckedImage  # noqa: F401
from ..engine import DyTHook, DyTRunner  # noqa: F401
from .backbone import DyTSegViT
from .neck import ViTFeaturePyramid
from .segmentor import DyTEncoderDecoder
from .transforms import LoadCheckedAnnotations

__all__ = ['DyTSegViT', 'ViTFeaturePyramid', 'DyTEncoderDecoder', 'LoadCheckedAnnotations']
