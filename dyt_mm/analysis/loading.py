"""Config, model and checkpoint loading shared by the analysis tools."""
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import nn

from ..models.backbone_base import DyTBackboneBase
from ..models.dyt import DyTNetwork
from ..models.dyt.network import dyt_network
from ..utils.cli import check_config_file
from ..utils.peft import load_checkpoint_strictly
from .toolbox import init_default_scope_of


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    check_config_file(path)
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise ValueError(f'{path} defines no model; expected a DyT model config')
    return cfg


def dyt_parts(model: nn.Module) -> Tuple[DyTBackboneBase, DyTNetwork]:
    """The one DyT backbone of ``model`` (or ``model`` itself) and its ViT."""
    if is_model_wrapper(model):
        model = model.module
    backbones = [m for m in model.modules() if isinstance(m, DyTBackboneBase)]
    if len(backbones) != 1:
        raise ValueError(f'the analysis tools need a model with exactly one DyT backbone; '
                         f'{type(model).__name__} has {len(backbones)}')
    return backbones[0], dyt_network(model)


def build_model(cfg: Config, checkpoint: Optional[str] = None) -> nn.Module:
    """The config's model in eval mode on the CPU, with ``checkpoint`` loaded.

    Without a checkpoint the weights stay random (the pre-trained base of the
    backbone's ``init_cfg`` is not read): enough for FLOPs and speed, which do
    not depend on the weights beyond the masks.
    """
    from mmengine.registry import MODELS
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    init_default_scope_of(cfg)
    model = MODELS.build(cfg.model)
    try:
        dyt_parts(model)
    except ValueError as error:
        raise ValueError(f'{cfg.filename or "the config"} is not a DyT model config: '
                         f'{error}') from None
    if checkpoint is not None:
        load_checkpoint_strictly(model, checkpoint)
    return model.eval()


@torch.no_grad()
def denormalize(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Undo the data preprocessor's normalisation: channels first, 0..255, RGB."""
    pre = model.data_preprocessor
    shape = (-1, ) + (1, ) * (inputs.ndim - 1)
    mean = getattr(pre, 'mean', torch.zeros(1)).flatten().reshape(shape)
    std = getattr(pre, 'std', torch.ones(1)).flatten().reshape(shape)
    pixels = (inputs * std + mean).clamp(0, 255)
    # Without a channel conversion in the preprocessor the inputs keep the
    # loading order, which is BGR for mmcv/mmengine loaders.
    if not getattr(pre, '_channel_conversion', True):
        pixels = pixels.flip(0)
    return pixels
