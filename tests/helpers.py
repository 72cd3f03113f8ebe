"""Tiny configs and files shared by the end-to-end tests."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DIGITS_TARGET_CONFIG = osp.join(REPO, 'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py')
DIGITS_SOURCE_CONFIG = osp.join(REPO, 'configs/demo/vit-tiny-p4_digits-source.py')
TINY_VIT = dict(arch=dict(embed_dims=64, depth=2, num_heads=2), img_size=32, patch_size=8)


def save_random_base(path: str, **vit_overrides) -> str:
    """A 'pre-trained' base checkpoint (random weights) in the converted format."""
    from dyt_mm import DyTViT
    vit = DyTViT(**dict(TINY_VIT, **vit_overrides))
    state = {k: v for k, v in vit.state_dict().items() if not vit.is_dyt_param(k)}
    torch.save({'state_dict': state, 'meta': {'source': 'random'}}, path)
    return path


def tiny_digits_cfg(data_root: str, work_dir: str, base_ckpt=None, max_iters: int = 4,
                    val_interval: int = 4, config: str = DIGITS_TARGET_CONFIG,
                    **options) -> Config:
    """A digits demo config (the DyT stage by default) shrunk to a 2-block ViT and a few
    iterations."""
    cfg = Config.fromfile(config)
    init_cfg = dict(type='Pretrained', checkpoint=base_ckpt) if base_ckpt else None
    cfg.merge_from_dict({
        'work_dir': work_dir,
        'data_root': data_root,
        'model.backbone.arch': TINY_VIT['arch'],
        'model.backbone.patch_size': TINY_VIT['patch_size'],
        'model.backbone.init_cfg': init_cfg,
        'model.head.in_channels': 64,
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'train_dataloader.batch_size': 16,
        'train_cfg': dict(_delete_=True, by_epoch=False, max_iters=max_iters,
                          val_interval=val_interval),
        'param_scheduler': dict(_delete_=True, type='CosineAnnealingLR', by_epoch=False,
                                T_max=max_iters),
        'default_hooks.checkpoint': dict(type='CheckpointHook', by_epoch=False,
                                         interval=val_interval),
        'default_hooks.logger.interval': 1,
        'log_level': 'WARNING',
    })
    cfg.merge_from_dict(options)
    return cfg


def run_tool(*args, timeout=600, env=None):
    """Run a repository tool with this interpreter; returns the CompletedProcess."""
    # The repository's own package first, even if the installed copy is older.
    full_env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def quick_budget_sweep(cfg: Config, target: float = 0.2):
    """A random-weight model of ``cfg`` through the budget sweep at one keep rate, timed
    once. Checks what holds for every toolbox; returns the two points and the metric."""
    from dyt_mm.analysis import build_model
    from dyt_mm.analysis.budget import budget_sweep
    lines = []
    sweep = budget_sweep(build_model(cfg), cfg, [target], speed_batch=2, num_iters=1, warmup=0,
                         progress=lines.append)
    uncalibrated, point = sweep['points']
    assert point['calibration_keep_rate'] == pytest.approx(target, abs=0.01)
    assert point['keep_rate'] < uncalibrated['keep_rate'] and point['throughput'] > 0
    assert point['gflops'] < uncalibrated['gflops'] and type(point['metric']) is float  # JSON
    assert lines[1].startswith(f'[1/1] target {target:g}')
    return uncalibrated, point, sweep['metric']
