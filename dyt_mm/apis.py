"""Helpers the command-line tools share."""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def init_default_scope_of(cfg: Config) -> None:
    """Import the toolbox layer the config's scope needs and make it the default scope."""
    from mmengine.registry import init_default_scope
    scope = cfg.get('default_scope', 'mmpretrain')
    import_layer(scope)
    init_default_scope(scope)


def import_layer(scope: str) -> None:
    layers = {'mmpretrain': 'dyt_mm.cls', 'mmseg': 'dyt_mm.seg', 'mmaction': 'dyt_mm.video'}
    if scope not in layers:
        raise ValueError(f'unknown default_scope {scope!r}; allowed: {", ".join(layers)}')
    import importlib
    importlib.import_module(layers[scope])


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
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.update(device_ids=None, broadcast_buffers=False)
    cfg.model_wrapper_cfg = wrapper
    env = cfg.setdefault('env_cfg', {})
    env.setdefault('dist_cfg', {})['backend'] = 'gloo'
