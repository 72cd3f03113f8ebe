"""The DyT core in plain PyTorch: dispatcher, adapters, block, ViT, Swin, FLOPs, losses,
weight loading."""
from torch import nn

from .adapters import DEFAULT_ADAPTER, LoRA, Adapter, MoEAdapter, VPTPrompts, build_adapter
from .block import VARIANTS, DyTBlock
from .calibration import calibrate_budget, set_threshold_offsets, threshold_offsets
from .capacity import (calibrate_capacities, capacities, capacity_overflow,
                       reset_capacity_overflow, set_capacities)
from .dispatcher import (DEFAULT_DISPATCH, RandomDispatcher, SampleDispatcher, TokenDispatcher,
                         build_dispatcher)
from .flops import SwinFlops, ViTFlops
from .losses import DyTObjective, distill_kl, rate_loss
from .multitask import MultiTaskDyT
from .network import DyTNetwork, DyTOutput
from .pretrained import load_pretrained
from .site import MODES, DispatchedBlock, dyt_mode, run_site, set_mode
from .swin import DyTSwin
from .vit import ARCH_PRESETS, DyTViT


def set_tau(model: nn.Module, tau: float) -> None:
    """Set the Gumbel-sigmoid temperature of every dispatcher in ``model``."""
    for module in model.modules():
        if isinstance(module, TokenDispatcher):
            module.tau = tau


__all__ = [
    'Adapter', 'MoEAdapter', 'LoRA', 'VPTPrompts', 'build_adapter', 'TokenDispatcher',
    'SampleDispatcher', 'RandomDispatcher', 'build_dispatcher', 'DyTBlock', 'DispatchedBlock',
    'run_site', 'DyTViT', 'DyTOutput', 'ViTFlops', 'DyTNetwork', 'MultiTaskDyT', 'DyTSwin', 'SwinFlops',
    'DyTObjective', 'rate_loss', 'distill_kl', 'set_mode', 'dyt_mode', 'set_tau',
    'calibrate_budget', 'threshold_offsets', 'set_threshold_offsets', 'set_capacities',
    'calibrate_capacities', 'capacities', 'capacity_overflow', 'reset_capacity_overflow', 'MODES',
    'VARIANTS', 'ARCH_PRESETS', 'DEFAULT_ADAPTER', 'DEFAULT_DISPATCH', 'load_pretrained'
]
