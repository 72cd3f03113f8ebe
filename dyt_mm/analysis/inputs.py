"""Inputs for the analysis tools: the config's test data, or random backbone inputs."""
import copy
import os.path as osp
from typing import Any, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from ..models.dyt import dyt_mode
from .loading import dyt_parts
from .probe import DispatchProbe
from .toolbox import single_file_pipeline, toolbox_of


def test_data_missing(cfg: Config) -> Optional[str]:
    """Why the config's test data cannot be read here, or None if it can.

    Only checks that the data set's folder and list file exist: building a
    data set whose files are absent may start a download (mmpretrain's CIFAR
    does).
    """
    loader = cfg.get('test_dataloader')
    if not loader or not loader.get('dataset'):
        return 'the config has no test_dataloader'
    data_root = loader.dataset.get('data_root') or ''
    if data_root and not osp.isdir(data_root):
        return f'its data_root {data_root!r} does not exist'
    ann_file = loader.dataset.get('ann_file')
    if ann_file and not osp.isfile(osp.join(data_root, ann_file)):
        return f'its ann_file {osp.join(data_root, ann_file)!r} does not exist'
    return None


@torch.no_grad()
def run_on_test_data(model: nn.Module, cfg: Config, num_samples: int,
                     keep_inputs: bool = False) -> Tuple[DispatchProbe, int]:
    """Run ``model.test_step`` (its own test mode) on the first ``num_samples`` test samples.

    Returns the probe and the number of samples really run: fewer when the
    test set is smaller.
    """
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(batch_size=min(num_samples, loader_cfg.get('batch_size', 1)),
                      num_workers=0, persistent_workers=False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    seen = 0
    with DispatchProbe(model, keep_inputs) as probe:
        for data in Runner.build_dataloader(loader_cfg):
            data = {k: v[:num_samples - seen] for k, v in data.items()}
            model.test_step(data)
            seen += len(data['inputs'])
            if seen >= num_samples:
                break
    return probe, seen


def random_backbone_inputs(model: nn.Module, batch_size: int,
                           shape: Optional[Sequence[int]] = None, seed: int = 0) -> torch.Tensor:
    """``example_input`` of the model's DyT backbone; ``shape`` replaces its last dims.

    ``shape`` is ``H W`` for images, ``T H W`` (or ``H W``) for clips.
    """
    backbone, _ = dyt_parts(model)
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
        torch.manual_seed(seed)
        example = backbone.example_input(batch_size)
    if shape:
        shape = tuple(shape)
        spatial = example.ndim - 2
        if not 1 <= len(shape) <= spatial or min(shape) < 1:
            raise ValueError(f'--shape {" ".join(map(str, shape))} does not fit this backbone, '
                             f'whose input is {tuple(example.shape)} (batch, channels, then '
                             f'{spatial} sizes): give up to {spatial} positive sizes')
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            example = torch.randn(*example.shape[:example.ndim - len(shape)], *shape)
    return example


@torch.no_grad()
def run_on_inputs(model: nn.Module, inputs: torch.Tensor, mode: str = 'sparse',
                  keep_inputs: bool = False) -> DispatchProbe:
    """Run the model's DyT backbone on backbone inputs in ``mode``."""
    backbone, vit = dyt_parts(model)
    with dyt_mode(vit, mode), DispatchProbe(model, keep_inputs) as probe:
        backbone(inputs)
    return probe


@torch.no_grad()
def run_on_file(model: nn.Module, cfg: Config, path: str,
                keep_inputs: bool = False) -> Tuple[Any, DispatchProbe]:
    """Run ``model.test_step`` (its own test mode) on one image or video file.

    The file goes through the config's test pipeline without its annotation
    loading. Returns the toolbox's data sample and the probe of every backbone
    call (one per batch of crops of a sliding window; views share one).
    """
    from mmengine.dataset import Compose, pseudo_collate
    if not isinstance(path, str) or not osp.isfile(path):
        raise FileNotFoundError(f'input file not found: {path!r}')
    toolbox = toolbox_of(cfg)
    pipeline = Compose(single_file_pipeline(toolbox, cfg.test_dataloader.dataset.pipeline))
    data = pipeline(dict(toolbox.file_info, **{toolbox.file_key: path}))
    with DispatchProbe(model, keep_inputs) as probe:
        prediction = model.test_step(pseudo_collate([data]))[0]
    return prediction, probe
