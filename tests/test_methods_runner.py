"""Each comparison method trains and tests through tools/train.py and tools/test.py (tiny
ViT, digits files, two iterations), and a user's own registered adapter does too."""
import importlib.util
import os.path as osp

import pytest
import torch
from helpers import REPO, save_random_base, tiny_digits_cfg
from mmengine.registry import MODELS
from torch import nn

import dyt_mm.cls  # noqa: F401
from dyt_mm import dyt_mode

DEMO = osp.join(REPO, 'configs/demo')
METHOD_CONFIGS = ['linear-probe', 'full', 'adaptformer-d16', 'lora-r8', 'vpt-deep-p8',
                  'dynamic-full-r0.5', 'dynamic-full-paper-r0.5', 'dyt-r0.5']
DISPATCHED = ('dynamic-full-r0.5', 'dynamic-full-paper-r0.5', 'dyt-r0.5')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tools():
    return load_tool('train'), load_tool('test')


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    return save_random_base(str(tmp_path_factory.mktemp('base') / 'base.pth'))


def tiny_cfg(digits_root, base_ckpt, tmp_path, **kwargs):
    """Two iterations, a checkpoint after them, no validation, tested on 24 images."""
    return tiny_digits_cfg(digits_root, str(tmp_path / 'work'), base_ckpt, max_iters=2,
                           val_interval=100, **{
                               'default_hooks.checkpoint': dict(
                                   type='CheckpointHook', by_epoch=False, interval=2),
                               'test_dataloader.dataset.indices': 24}, **kwargs)


def train_and_test(tools, cfg, tmp_path):
    """tools/train.py for the config, then tools/test.py on its last checkpoint."""
    train, test = tools
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    work_dir = str(tmp_path / 'work')
    train.main([cfg_path, '--work-dir', work_dir])
    metrics = test.main([cfg_path, osp.join(work_dir, 'iter_2.pth'),
                         '--work-dir', str(tmp_path / 'test')])
    return metrics


@pytest.mark.parametrize('method', METHOD_CONFIGS)
def test_method_trains_and_tests_through_the_tools(method, tools, digits_root, base_ckpt,
                                                   tmp_path):
    config = osp.join(DEMO, f'{method}_vit-tiny-p4_digits-target.py')
    cfg = tiny_cfg(digits_root, base_ckpt, tmp_path, config=config)
    metrics = train_and_test(tools, cfg, tmp_path)
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    expected_rate = 0.5 if method in DISPATCHED else 1.0
    # the keep rate DyTHook logged at test (untrained dispatchers keep about half)
    from mmengine.logging import MessageHub
    rate = MessageHub.get_current_instance().get_scalar('test/keep_rate').current()
    assert rate == pytest.approx(expected_rate, abs=0.5 if expected_rate < 1 else 0)


@MODELS.register_module(force=True)
class GatedTanhAdapter(nn.Module):
    """A user's adapter: no `attach`, no `flops`; parallel by default, traced for FLOPs."""

    def __init__(self, embed_dims, hidden=8):
        super().__init__()
        self.inner = nn.Linear(embed_dims, hidden)
        self.outer = nn.Linear(hidden, embed_dims)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.gate * self.outer(torch.tanh(self.inner(x)))


def test_a_users_registered_adapter_trains_and_runs_in_the_three_modes(tools, digits_root,
                                                                       base_ckpt, tmp_path):
    cfg = tiny_cfg(digits_root, base_ckpt, tmp_path)
    cfg.model.backbone.adapter = dict(type='GatedTanhAdapter', hidden=4)
    metrics = train_and_test(tools, cfg, tmp_path)
    assert 'accuracy/top1' in metrics

    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    model = PRETRAIN_MODELS.build(cfg.model)
    model.init_weights()
    vit = model.backbone.vit
    adapters = [a for block in vit.blocks for a in block.adapters.values()]
    assert len(adapters) == 2 and all(type(a) is GatedTanhAdapter for a in adapters)
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in vit.named_parameters()
                         if '.adapters.' in n or '.dispatchers.' in n}
    # train: every DyT term, gradients reach the user's adapter
    samples = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8) for _ in range(4)],
        data_samples=None), False)['inputs']
    from mmpretrain.structures import DataSample
    labels = [DataSample().set_gt_label(i % 10) for i in range(4)]
    for adapter in adapters:
        nn.init.constant_(adapter.gate, 0.5)
    losses = model.train().loss(samples, labels)
    assert {'loss_cls', 'loss_complete', 'loss_distill', 'loss_rate'} <= set(losses)
    sum(losses.values()).backward()
    assert all(a.gate.grad is not None and a.inner.weight.grad.abs().sum() > 0
               for a in adapters)
    # eval: the three modes; sparse equals masked
    model.eval()
    with torch.no_grad():
        outs = {}
        for mode in ('masked', 'complete', 'sparse'):
            with dyt_mode(vit, mode):
                outs[mode] = vit(samples)
    torch.testing.assert_close(outs['sparse'].tokens, outs['masked'].tokens, atol=1e-5, rtol=0)
    assert not torch.allclose(outs['complete'].tokens, outs['masked'].tokens, atol=1e-4)
    # FLOPs traced for the user's adapter: 2 linear layers on every token
    from dyt_mm import ViTFlops
    flops = ViTFlops(vit)
    tokens = 1 + 16
    assert flops.complete() - flops.dense() == 2 * 2 * tokens * 64 * 4
