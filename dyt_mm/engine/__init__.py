from .hooks import DyTHook
from .runner import DyTRunner

__all__ = ['DyTHook', 'DyTRunner']
