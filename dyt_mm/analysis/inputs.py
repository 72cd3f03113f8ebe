"""Inputs for the analysis tools: the config's test data, or random backbone inputs."""
import copy
import os
import os.path as osp
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from ..models.dyt import dyt_mode
from .loading import dyt_parts
from .probe import DispatchProbe
from .toolbox import single_file_pipeline, toolbox_of

# A file the test pipeline leaves at more than this many times the pixels of the model's
# own input size is refused: attention's memory grows with the square of the token count,
# and a 4000 x 4000 image on a 32-pixel model would take gigabytes without a word.
MAX_INPUT_AREA_FACTOR = 16


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


def test_loader(cfg: Config, num_samples: Optional[int] = None):
    """The config's test data in order, in this process, at most ``num_samples`` per batch."""
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    batch_size = loader_cfg.get('batch_size', 1)
    loader_cfg.update(batch_size=min(num_samples or batch_size, batch_size), num_workers=0,
                      persistent_workers=False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    return Runner.build_dataloader(loader_cfg)


@torch.no_grad()
def run_on_test_data(model: nn.Module, cfg: Config, num_samples: int,
                     keep_inputs: bool = False) -> Tuple[DispatchProbe, int]:
    """Run ``model.test_step`` (its own test mode) on the first ``num_samples`` test samples.

    Returns the probe and the number of samples really run: fewer when the
    test set is smaller.
    """
    seen = 0
    with DispatchProbe(model, keep_inputs) as probe:
        for data in test_loader(cfg, num_samples):
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


def check_input_file(path: Union[str, os.PathLike]) -> str:
    """``path`` as a string if it names a file, else an error that names it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'an input must be a file path (str or os.PathLike), got '
                        f'{type(path).__name__} {path!r}')
    path = os.fspath(path)
    if osp.isdir(path):
        raise ValueError(f'input {path} is a folder, not an image or video file')
    if not osp.isfile(path):
        raise FileNotFoundError(f'input file not found: {path}')
    return path


def check_input_size(model: nn.Module, path: str, inputs: torch.Tensor) -> None:
    """Refuse a file that the test pipeline leaves far larger than the model's input
    (``MAX_INPUT_AREA_FACTOR``), saying how to bring it to the model's size.

    The toolboxes' test pipelines normally resize; one written for data that is
    already at the model's size (the digits demo's) does not.
    """
    test_cfg = getattr(model, 'test_cfg', None) or {}
    if test_cfg.get('mode') == 'slide':
        return  # the backbone sees crops of its own size, however large the image
    _, vit = dyt_parts(model)
    height, width = inputs.shape[-2:]
    own_height, own_width = vit.img_size
    factor = height * width / (own_height * own_width)
    if factor > MAX_INPUT_AREA_FACTOR:
        raise ValueError(
            f'{path} reaches the model as {height}x{width} pixels after the config\'s test '
            f'pipeline, {factor:.0f} times the {own_height}x{own_width} input the model was '
            f'built for (at most {MAX_INPUT_AREA_FACTOR} times is run: memory grows with the '
            'square of the token count). The test pipeline does not bring it to the model\'s '
            f"size: add a resize step to it (e.g. dict(type='Resize', scale=({own_width}, "
            f'{own_height}))) or resize the file')


def read_file(cfg: Config, path: str) -> dict:
    """One image or video file through the config's test pipeline, without its annotation
    loading: the data dict the model's data preprocessor takes. An unreadable file is an
    error naming it."""
    from mmengine.dataset import Compose
    toolbox = toolbox_of(cfg)
    pipeline = Compose(single_file_pipeline(toolbox, cfg.test_dataloader.dataset.pipeline))
    try:
        return pipeline(dict(toolbox.file_info, **{toolbox.file_key: path}))
    except Exception as error:  # decoders' errors (cv2, PIL, decord, PyAV) rarely name it
        if isinstance(error, (ValueError, FileNotFoundError)) and path in str(error):
            raise  # LoadCheckedImage's: already clear
        raise ValueError(f'{path} could not be read through the config\'s test pipeline '
                         f'({type(error).__name__}: {error})') from error


@torch.no_grad()
def run_on_file(model: nn.Module, cfg: Config, path: Union[str, os.PathLike],
                keep_inputs: bool = False) -> Tuple[Any, DispatchProbe]:
    """Run ``model.test_step`` (its own test mode) on one image or video file.

    The file goes through the config's test pipeline without its annotation
    loading. Returns the toolbox's data sample and the probe of every backbone
    call (one per batch of crops of a sliding window; views share one). A file
    that cannot be read, or that the model cannot run, is an error naming it.
    """
    from mmengine.dataset import pseudo_collate
    path = check_input_file(path)
    data = read_file(cfg, path)
    check_input_size(model, path, data['inputs'])
    with DispatchProbe(model, keep_inputs) as probe:
        try:
            prediction = model.test_step(pseudo_collate([data]))[0]
        except ValueError as error:  # e.g. a size that the patches do not divide
            raise ValueError(f'{path}: {error}') from error
    return prediction, probe
