"""The DyT core in plain PyTorch: dispatcher, adapters, block, ViT, Swin, FLOPs, losses."""
from contextlib import contextmanager

from torch import nn

from .adapters import DEFAULT_ADAPTER, LoRA, Adapter, MoEAdapter, VPTPrompts, build_adapter
from .block import VARIANTS, DyTBlock
from .calibration import calibrate_budget, set_threshold_offsets, threshold_offsets
from .dispatcher import (DEFAULT_DISPATCH, RandomDispatcher, SampleDispatcher, TokenDispatcher,
                         build_dispatcher)
from .flops import SwinFlops, ViTFlops
from .losses import DyTObjective, distill_kl, rate_loss
from .network import DyTNetwork
from .site import MODES, DispatchedBlock, run_site
from .swin import DyTSwin
from .vit import ARCH_PRESETS, DyTOutput, DyTViT


def set_mode(model: nn.Module, mode: str) -> str:
    """Set the execution mode (masked / complete / sparse) of every dispatched block.

    Returns the mode the model had before; a model without DyT blocks is an error.
    """
    blocks = [m for m in model.modules() if isinstance(m, DispatchedBlock)]
    if not blocks:
        raise ValueError(f'{type(model).__name__} contains no DyT block')
    previous = blocks[0].mode
    for block in blocks:
        block.mode = mode
    return previous


@contextmanager
def dyt_mode(model: nn.Module, mode: str):
    """Run a block of code with ``model`` in ``mode``, then restore the old mode."""
    previous = set_mode(model, mode)
    try:
        yield model
    finally:
        set_mode(model, previous)


def set_tau(model: nn.Module, tau: float) -> None:
    """Set the Gumbel-sigmoid temperature of every dispatcher in ``model``."""
    for module in model.modules():
        if isinstance(module, TokenDispatcher):
            module.tau = tau


__all__ = [
    'Adapter', 'MoEAdapter', 'LoRA', 'VPTPrompts', 'build_adapter', 'TokenDispatcher',
    'SampleDispatcher', 'RandomDispatcher', 'build_dispatcher', 'DyTBlock', 'DispatchedBlock', 'run_site', 'DyTViT',
    'DyTOutput', 'ViTFlops', 'DyTNetwork', 'DyTSwin', 'SwinFlops', 'DyTObjective', 'rate_loss',
    'distill_kl', 'set_mode', 'dyt_mode',
    'set_tau', 'calibrate_budget', 'threshold_offsets', 'set_threshold_offsets', 'MODES',
    'VARIANTS', 'ARCH_PRESETS', 'DEFAULT_ADAPTER', 'DEFAULT_DISPATCH'
]
