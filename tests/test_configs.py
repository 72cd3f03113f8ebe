"""Every shipped classification config parses, and says what its name says."""
import glob
import os.path as osp
import re

import pytest
from helpers import REPO
from mmengine.config import Config

from dyt_mm.cls import VTAB1K_TASKS

VTAB = sorted(glob.glob(osp.join(REPO, 'configs/vtab1k/*.py')))
IMAGE = sorted(glob.glob(osp.join(REPO, 'configs/image/*.py')))


def test_all_vtab_tasks_at_three_rates():
    assert len(VTAB) == 19 * 3
    tasks = {Config.fromfile(p).train_dataloader.dataset.task for p in VTAB}
    assert tasks == set(VTAB1K_TASKS)


@pytest.mark.parametrize('path', VTAB, ids=osp.basename)
def test_vtab_config_matches_its_name(path):
    cfg = Config.fromfile(path)
    rate = float(re.search(r'dyt-r([0-9.]+)_', osp.basename(path)).group(1))
    task = cfg.train_dataloader.dataset.task
    assert cfg.model.dyt_loss.target_rate == rate
    assert cfg.model.head.num_classes == VTAB1K_TASKS[task]
    assert cfg.test_dataloader.dataset.task == task and cfg.test_dataloader.dataset.split == 'test'
    assert cfg.model.backbone.adapter.bottleneck == 8  # d = 8 on VTAB-1K (paper)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 and cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size == 64 and cfg.default_scope == 'mmpretrain'


@pytest.mark.parametrize('path', IMAGE, ids=osp.basename)
def test_complete_dataset_config(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    backbone = cfg.model.backbone
    assert backbone.adapter.bottleneck == 64 and cfg.optim_wrapper.optimizer.weight_decay == 0.01
    assert backbone.adapter.num_experts == (4 if 'moe4' in name else 1)
    expected_variant = {'attn-': 'attn', 'attnmlp-': 'attn_mlp', 'layer-': 'layer'}
    variant = next((v for k, v in expected_variant.items() if f'dyt-{k}' in name), 'mlp')
    assert backbone.variant == variant
    assert cfg.param_scheduler[0].end == 20 and cfg.train_cfg.max_epochs == 100
    assert cfg.custom_imports.imports == ['dyt_mm.cls']


def test_a_vit_b_config_builds_the_paper_model():
    import dyt_mm.cls  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/vtab1k/dyt-r0.5_vit-b16-in21k_vtab1k-cifar100.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    trainable = sum(p.numel() for n, p in model.backbone.named_parameters() if p.requires_grad)
    # d = 8: 12 x (768*8 + 8 + 8*768 + 768 adapter + 769 dispatcher) = 0.166 M; the paper
    # prints 0.16 M (Table 3), the adapters alone are 0.157 M.
    assert trainable == 12 * (768 * 8 + 8 + 8 * 768 + 768 + 769) == 165996
