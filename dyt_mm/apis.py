"""Python entry points: a trained DyT model in two calls, and the tools' shared set-up.

.. code-block:: python

    from dyt_mm.apis import init_model, inference
    model = init_model(CONFIG, CHECKPOINT)   # full or adapter-only checkpoint
    sample = inference(model, 'image.png')   # the toolbox's data sample, plus
    sample.keep_rates, sample.gflops         # what the dispatchers kept, what it cost

Many tasks adapted from one frozen base, served in one mixed batch:

.. code-block:: python

    from dyt_mm.apis import init_multitask_model, inference
    model = init_multitask_model([(CONFIG_A, CKPT_A), (CONFIG_B, CKPT_B)], names=['a', 'b'])
    samples = inference(model, ['x.png', 'y.png'], tasks=['a', 'b'])
"""
import copy
import datetime
import numbers
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from mmengine.config import Config
from torch import nn

from .analysis.flops import backbone_flops
from .analysis.inputs import check_input_file, read_file, run_on_file
from .analysis.loading import build_model, dyt_parts, load_config
from .analysis.toolbox import import_layer, init_default_scope_of, scope_of_config
from .models.multitask_model import MultiTaskModel
from .utils.peft import load_checkpoint_strictly

__all__ = ['init_model', 'init_multitask_model', 'inference', 'init_default_scope_of',
           'import_layer', 'prepare_distributed', 'MultiTaskModel']


def init_model(config: Union[str, Config], checkpoint: Optional[str],
               device: str = 'cpu', cfg_options: Optional[dict] = None) -> nn.Module:
    """The DyT model of a classification, segmentation or video config, in eval mode.

    Args:
        config: a config file or a :class:`~mmengine.config.Config`.
        checkpoint: a training checkpoint, full or adapter-only
            (``DyTHook(save_trainable_only=True)``, whose frozen base comes
            from the backbone's ``init_cfg``). Only tensors are read, and every
            key must fit the model. ``None`` keeps random weights.
        device: where the model goes (``'cpu'``, ``'cuda:0'``).
        cfg_options: overrides merged into the config, as ``--cfg-options``.

    The model keeps its config as ``model.cfg`` (which :func:`inference` and
    the toolboxes' own inference functions read) and the data set's
    ``dataset_meta`` (class names) from the checkpoint, if it saved them.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)  # the model keeps its own
        cfg.merge_from_dict(cfg_options or {})
    else:
        cfg = load_config(config, cfg_options)
    with scope_of_config(cfg):  # leaves the caller's default scope as it was
        model = build_model(cfg)
        meta = load_checkpoint_strictly(model, checkpoint).get('meta') if checkpoint else None
    model.cfg = cfg
    model.dataset_meta = dict(meta.get('dataset_meta') or {}) if isinstance(meta, dict) else {}
    return model.to(device)


def init_multitask_model(tasks: Sequence[Tuple[Union[str, Config], Optional[str]]],
                         names: Optional[Sequence[str]] = None, device: str = 'cpu',
                         cfg_options: Optional[dict] = None) -> MultiTaskModel:
    """One :class:`~dyt_mm.models.multitask_model.MultiTaskModel` serving the classifiers
    of ``tasks``, ``(config, checkpoint)`` pairs adapted from one frozen base.

    Each pair is loaded as :func:`init_model` loads it (adapter-only
    checkpoints take the base from the config's ``init_cfg``); then their
    networks are folded into one: the base is kept once, each task keeps its
    dispatchers (with its calibrated threshold offsets), adapters, head and
    data preprocessor. A pair whose base differs from the first's is refused,
    naming the first differing tensor and both checkpoints. ``names``: one per
    task (default: each config's file name, or ``task<i>``).
    """
    if not tasks:
        raise ValueError('init_multitask_model needs at least one (config, checkpoint) pair')
    names = list(names) if names is not None else [
        osp.splitext(osp.basename(cfg))[0] if isinstance(cfg, str) else f'task{i}'
        for i, (cfg, _) in enumerate(tasks)]
    if len(names) != len(tasks) or len(set(names)) != len(names):
        raise ValueError(f'names must give each of the {len(tasks)} tasks its own name, got '
                         f'{names!r}')
    models, sources = {}, {}
    for name, (config, checkpoint) in zip(names, tasks):
        models[name] = init_model(config, checkpoint, device, cfg_options)
        sources[name] = checkpoint or (config if isinstance(config, str) else f'task {name}')
    return MultiTaskModel(models, sources)


@torch.no_grad()
def inference(model: nn.Module, inputs: Union[str, os.PathLike, Sequence[str]],
              tasks: Optional[Union[str, Sequence[str]]] = None):
    """Predict image or video files with the model's test pipeline and test mode.

    Returns the toolbox's data sample (mmpretrain ``DataSample``, mmseg
    ``SegDataSample``, mmaction ``ActionDataSample``), or a list of them for
    a list of files, in the order of the files, each with two fields added:

    * ``keep_rates``: ``(S,)`` tensor, the fraction of image tokens each
      dispatch site kept on this input (one site per layer; two for the
      ``attn_mlp`` variant), over all its sliding-window crops, views and
      frames;
    * ``gflops``: the backbone GFLOPs this input cost as the model ran it
      (summed over crops, views and frames; one multiply-add = one FLOP).

    A file that is missing, a folder, not an image or video, or that the test
    pipeline leaves far larger than the model's input size raises an error
    naming it; in a list, missing files and folders are found before any file
    is run. Nothing is returned then, so results never shift against files.

    A multi-task model (:func:`init_multitask_model`) needs ``tasks``: the
    task of each file (one name for one file). Each file goes through its
    task's test pipeline, all of them through the shared network in one mixed
    batch, and each comes back in its task's format, with its keep rates and
    GFLOPs.
    """
    if isinstance(model, MultiTaskModel):
        return multitask_inference(model, inputs, tasks)
    if tasks is not None:
        raise ValueError('tasks= is for a multi-task model (init_multitask_model); this '
                         f'{type(model).__name__} serves one task')
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise ValueError('inference() needs the model\'s config as model.cfg; build the model '
                         'with dyt_mm.apis.init_model(config, checkpoint)')
    single = isinstance(inputs, (str, os.PathLike))
    if not single and not isinstance(inputs, Sequence):
        raise TypeError(f'inference() takes a file path or a list of them, got '
                        f'{type(inputs).__name__}')
    paths = [check_input_file(path) for path in ([inputs] if single else inputs)]
    _, vit = dyt_parts(model)
    samples = []
    with scope_of_config(cfg):
        for path in paths:
            sample, probe = run_on_file(model, cfg, path)
            sample.keep_rates = torch.cat([call.keep_rates for call in probe.calls]).mean(
                dim=0).float()
            sample.gflops = sum(backbone_flops(vit, call).sum().item()
                                for call in probe.calls) / 1e9
            samples.append(sample)
    return samples[0] if single else samples


def multitask_inference(model: MultiTaskModel, inputs: Union[str, os.PathLike, Sequence[str]],
                        tasks: Optional[Union[str, Sequence[str]]]) -> Union[object, List]:
    single = isinstance(inputs, (str, os.PathLike))
    files = [inputs] if single else list(inputs)
    task_list = [tasks] if isinstance(tasks, str) else list(tasks or [])
    if len(task_list) != len(files):
        raise ValueError(f'a multi-task model needs the task of each file: {len(files)} '
                         f'file(s), tasks={tasks!r}; served: {", ".join(model.tasks)}')
    for task in task_list:
        if task not in model.tasks:
            raise ValueError(f'unknown task {task!r}; served: {", ".join(model.tasks)}')
    paths = [check_input_file(path) for path in files]
    cfgs = {task: getattr(model.models[task], 'cfg', None) for task in model.tasks}
    missing = [task for task, cfg in cfgs.items() if not isinstance(cfg, Config)]
    if missing:
        raise ValueError(f'inference() reads each task\'s test pipeline from its model\'s '
                         f'config (model.cfg); task(s) {missing} have none: build them with '
                         'dyt_mm.apis.init_model(config, checkpoint)')
    data = []
    for path, task in zip(paths, task_list):
        with scope_of_config(cfgs[task]):
            data.append(read_file(cfgs[task], path))
    with scope_of_config(cfgs[task_list[0]]):
        samples = model.predict(data, task_list)
    return samples[0] if single else samples


def collective_timeout(cfg: Config) -> datetime.timedelta:
    """``env_cfg.dist_cfg.timeout`` (seconds, as mmengine's ``init_dist`` reads it), or
    torch's default of 30 minutes."""
    seconds = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    if seconds is None:
        return dist.default_pg_timeout
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or seconds <= 0:
        raise ValueError('env_cfg.dist_cfg.timeout must be a number of seconds > 0, got '
                         f'{seconds!r}')
    return datetime.timedelta(seconds=seconds)


def prepare_distributed(cfg: Config) -> None:
    """Make mmengine's distributed launchers work on machines without GPUs.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``; on a CPU
    machine we initialise a gloo process group ourselves first (the Runner
    then skips its own ``init_dist``), and DDP must not get ``device_ids``.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = subprocess.getoutput(
                f'scontrol show hostnames {os.environ["SLURM_NODELIST"]} | head -n1')
            os.environ['MASTER_ADDR'] = nodes.strip()
        os.environ.setdefault('MASTER_PORT', '29500')
    if not dist.is_initialized():
        # the timeout after which a collective that a rank never joins (a hung rank) fails
        dist.init_process_group(backend='gloo', timeout=collective_timeout(cfg))
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.update(device_ids=None, broadcast_buffers=False)
    cfg.model_wrapper_cfg = wrapper
    env = cfg.setdefault('env_cfg', {})
    env.setdefault('dist_cfg', {})['backend'] = 'gloo'
