"""Keep-rate calibration: the target is met, offsets travel with checkpoints, bad targets fail."""
import json
import os.path as osp

import pytest
import torch
from helpers import run_tool, save_random_base, tiny_digits_cfg

import dyt_mm
from dyt_mm import DyTViT, calibrate_budget
from dyt_mm.engine import DyTRunner
from dyt_mm.models.dyt import TokenDispatcher, set_threshold_offsets, threshold_offsets
from dyt_mm.utils.checkpoint import load_tensors
from dyt_mm.utils.peft import (adapter_only_keys, complete_trainable_state,
                               load_checkpoint_strictly, trainable_state_dict)

SMALL = dict(arch=dict(embed_dims=64, depth=3, num_heads=2), img_size=32, patch_size=4)


def busy_vit(variant='mlp', seed=0):
    """Random weights; dispatchers whose logits spread widely, so masks differ per token."""
    torch.manual_seed(seed)
    vit = DyTViT(variant=variant, **SMALL).eval()
    for module in vit.modules():
        if isinstance(module, TokenDispatcher):
            torch.nn.init.normal_(module.gate.weight, std=0.5)
    return vit


def random_batches(count=3, batch=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 32, 32, generator=generator) for _ in range(count)]


def keep_rates(vit, data):
    with torch.no_grad():
        masks = torch.cat([vit(x).masks for x in data]).double()
    return masks.mean().item(), masks.mean(dim=(0, 2))


@pytest.mark.parametrize('variant', ['mlp', 'attn_mlp'])
@pytest.mark.parametrize('per_layer', [False, True], ids=['global', 'per-layer'])
@pytest.mark.parametrize('target', [0.3, 0.75])
def test_calibration_meets_the_keep_rate_on_its_data(variant, per_layer, target, single_thread):
    vit, data = busy_vit(variant), random_batches()
    result = calibrate_budget(vit, data, target, per_layer=per_layer)
    rate, per_site = keep_rates(vit, data)
    assert result['converged'] and result['keep_rate'] == pytest.approx(rate, abs=1e-12)
    assert rate == pytest.approx(target, abs=0.002)
    offsets = threshold_offsets(vit)
    if per_layer:
        assert torch.allclose(per_site, torch.full_like(per_site, target), atol=0.002)
        assert len(set(offsets.tolist())) > 1
    else:
        assert (offsets == offsets[0]).all() and offsets[0] != 0


def test_gflops_target_is_met_and_keep_all_is_the_complete_cost(single_thread):
    vit, data = busy_vit(), random_batches()
    everything = calibrate_budget(vit, data, 1.0)
    assert everything['keep_rate'] == 1.0 and threshold_offsets(vit).isneginf().all()
    ceiling = everything['gflops']
    every_token = torch.full((1, len(vit.sites)), 64)  # 8 x 8 patches
    assert ceiling == pytest.approx(dyt_mm.ViTFlops(vit).per_sample(every_token).item() / 1e9)
    target = 0.8 * ceiling
    result = calibrate_budget(vit, data, dict(gflops=target))
    with torch.no_grad():
        measured = torch.cat([dyt_mm.ViTFlops(vit).from_masks(vit(x).masks) for x in data])
    assert measured.mean().item() / 1e9 == pytest.approx(result['gflops'], rel=1e-12)
    assert result['gflops'] == pytest.approx(target, abs=0.002 * ceiling)
    assert result['keep_rate_before'] == 1.0 and result['keep_rate'] < 1.0


@pytest.mark.parametrize('target, message', [
    (0, r'keep rate must lie in \(0, 1\], got 0'),
    (-0.2, r'keep rate must lie in \(0, 1\], got -0.2'),
    (1.5, r'keep rate must lie in \(0, 1\], got 1.5'),
    ('half', "keep_rate must be a number, got 'half'"),
    (dict(gflops=0.0), 'GFLOPs per image must be a positive number, got 0.0'),
    (dict(flops=1.0), r"dict\(keep_rate=R\) or dict\(gflops=G\), got \{'flops': 1.0\}"),
])
def test_bad_targets_are_errors_naming_the_value(target, message):
    with pytest.raises(ValueError, match=message):
        calibrate_budget(busy_vit(), random_batches(1), target)


@pytest.mark.parametrize('networks', [0, 2])
def test_a_model_without_exactly_one_dyt_network_is_named(networks):
    model = torch.nn.ModuleList([busy_vit() for _ in range(networks)])
    with pytest.raises(ValueError, match=f'ModuleList must hold exactly one DyT network '
                       rf'\(ViT, Swin\), has {networks}'):
        calibrate_budget(model, random_batches(1), 0.5)


@pytest.mark.parametrize('factor', [0.5, 1.5], ids=['below-floor', 'above-ceiling'])
def test_gflops_target_out_of_reach_is_an_error_naming_the_range(factor):
    vit = busy_vit()
    flops = dyt_mm.ViTFlops(vit)
    floor = flops.per_sample(torch.zeros(1, len(vit.sites))).item() / 1e9
    bound = floor if factor < 1 else flops.per_sample(torch.full((1, len(vit.sites)), 64)
                                                      ).item() / 1e9
    with pytest.raises(ValueError, match=rf'target of {bound * factor:g} backbone GFLOPs per '
                       rf'image is out of reach .* allowed \({floor:.6g}, '):
        calibrate_budget(vit, random_batches(1), dict(gflops=bound * factor))


def test_offsets_change_only_the_eval_decision():
    vit = busy_vit()
    x = random_batches(1)[0]
    dispatcher = vit.blocks[0].dispatchers['mlp']
    tokens = torch.randn(4, 65, 64)
    masks = {}
    for offset in (0.0, 2.0):
        set_threshold_offsets(vit, offset)
        dispatcher.train()
        torch.manual_seed(0)
        masks[offset, 'train'] = dispatcher(tokens, 1)
        dispatcher.eval()
        masks[offset, 'eval'] = dispatcher(tokens, 1)
    assert torch.equal(masks[0.0, 'train'], masks[2.0, 'train'])
    logits = dispatcher.gate(tokens[:, 1:]).squeeze(-1)
    assert torch.equal(masks[2.0, 'eval'][:, 1:], (logits > 2.0).float())
    assert masks[2.0, 'eval'].sum() < masks[0.0, 'eval'].sum()
    set_threshold_offsets(vit, 0.0)
    assert torch.equal(vit(x).masks, busy_vit()(x).masks)  # 0 is the paper's rule


@pytest.mark.parametrize('variant', ['mlp', 'attn', 'layer'])
def test_calibrated_model_still_has_sparse_equal_masked(variant, single_thread):
    vit, data = busy_vit(variant), random_batches(2)
    calibrate_budget(vit, data, 0.4)
    with torch.no_grad():
        with dyt_mm.dyt_mode(vit, 'masked'):
            masked = vit(data[0])
        with dyt_mm.dyt_mode(vit, 'sparse'):
            sparse = vit(data[0])
    assert torch.equal(masked.masks, sparse.masks)
    assert torch.allclose(masked.tokens, sparse.tokens, atol=1e-5)


def test_offsets_survive_save_and_load_and_old_checkpoints_still_load(tmp_path):
    vit = busy_vit()
    calibrate_budget(vit, random_batches(1), 0.4, per_layer=True)
    path = str(tmp_path / 'vit.pth')
    torch.save(vit.state_dict(), path)
    fresh = busy_vit(seed=1)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(threshold_offsets(fresh), threshold_offsets(vit))
    # a checkpoint from before calibration existed: loads strictly, offsets stay 0
    old = {k: v for k, v in vit.state_dict().items() if not k.endswith('threshold_offset')}
    before = busy_vit(seed=1)
    before.load_state_dict(old)
    assert threshold_offsets(before).eq(0).all()


def test_adapter_only_state_keeps_offsets_and_trainable_norm_statistics():
    model = torch.nn.Sequential(busy_vit(), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    keys = adapter_only_keys(model)
    assert {'1.running_mean', '1.running_var', '1.num_batches_tracked', '2.weight'} <= keys
    assert {f'0.{k}' for k in busy_vit().state_dict() if k.endswith('threshold_offset')} <= keys
    assert not any(k.startswith('0.') and 'mlp.fc1' in k for k in keys)  # the frozen base
    state = trainable_state_dict(model)
    assert set(state) == keys
    del state['1.running_var']  # as saved before statistics were kept: silently wrong
    with pytest.raises(ValueError, match=r'lacks 1 trainable parameter\(s\) or statistic\(s\) '
                       r'of this model: 1.running_var'):
        complete_trainable_state(model, state)
    offsets = [k for k in state if k.endswith('threshold_offset')]
    older = {k: v for k, v in trainable_state_dict(model).items() if k not in offsets}
    assert set(complete_trainable_state(model, older)) == set(model.state_dict())


# --------------------------------------------- with the Runner, the hook and the sweep tool
@pytest.fixture(scope='module')
def calibrated_run(digits_root, tmp_path_factory):
    """Four iterations, adapter-only checkpoints, calibrated to r at the end."""
    work_dir = str(tmp_path_factory.mktemp('calibrated'))
    base = save_random_base(osp.join(work_dir, 'base.pth'))
    cfg = tiny_digits_cfg(digits_root, work_dir, base)
    cfg.custom_hooks = [dict(type='DyTHook', save_trainable_only=True, calibrate_to_target=True,
                             calibration_samples=200)]
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    config = osp.join(work_dir, 'config.py')
    cfg.dump(config)
    return runner, work_dir, config


def test_hook_calibrates_to_r_and_the_checkpoint_carries_the_offsets(calibrated_run, digits_root):
    runner, work_dir, _ = calibrated_run
    scalars = runner.message_hub.log_scalars
    r = runner.model.dyt_objective.target_rate
    assert scalars['train/calibration_keep_rate'].current() == pytest.approx(r, abs=0.01)
    assert scalars['train/calibration_keep_rate_before'].current() != pytest.approx(r, abs=0.01)
    assert 'val/keep_rate' in scalars  # the last validation ran after the calibration
    offsets = threshold_offsets(runner.model)
    assert (offsets != 0).all()

    ckpt = osp.join(work_dir, 'iter_4.pth')
    state = load_tensors(ckpt)['state_dict']
    assert all(k.endswith('threshold_offset') or runner.model.get_parameter(k).requires_grad
               for k in state)
    from mmpretrain.registry import MODELS
    fresh = MODELS.build(runner.cfg.model)
    load_checkpoint_strictly(fresh, ckpt)
    assert torch.equal(threshold_offsets(fresh), offsets)


def test_budget_sweep_writes_table_json_and_plot(calibrated_run, tmp_path):
    _, work_dir, config = calibrated_run
    out = str(tmp_path / 'curve.png')
    args = ['tools/analysis/budget_sweep.py', config, osp.join(work_dir, 'iter_4.pth'),
            '--targets', '0.7', '0.3', '--calibration-samples', '64', '--out', out,
            '--batch-size', '8', '--num-iters', '2', '--warmup', '0', '--max-load', '0.001',
            '--cfg-options', 'test_dataloader.dataset.indices=64']
    done = run_tool(*args, env=dict(OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr
    assert '[2/2] target 0.3' in done.stderr
    sweep = json.loads(done.stdout.strip().splitlines()[-1])
    # timed on a loaded machine (above the limit given): the output says so
    assert sweep['unreliable'][0].startswith('the machine was loaded')
    assert f"UNRELIABLE: {sweep['unreliable'][0]}" in done.stdout.splitlines()
    assert all(p['ceiling'] > 1 for p in sweep['points'][1:])
    uncalibrated, high, low = sweep['points']
    assert uncalibrated['target'] is None and uncalibrated['offsets'] == [0.0] * 2
    for point in (high, low):
        assert point['calibration_keep_rate'] == pytest.approx(point['target'], abs=0.01)
        assert 0 <= point['metric'] <= 100 and point['throughput'] > 0
    assert low['gflops'] < high['gflops'] and low['keep_rate'] < high['keep_rate']
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    again = run_tool(*args)
    assert again.returncode != 0 and 'exists; not overwriting it' in again.stderr


def test_get_flops_shows_the_calibrated_offsets(calibrated_run):
    runner, work_dir, config = calibrated_run
    done = run_tool('tools/analysis/get_flops.py', config, '--checkpoint',
                    osp.join(work_dir, 'iter_4.pth'), '--num-samples', '4')
    assert done.returncode == 0, done.stderr
    assert 'calibrated threshold offsets' in done.stdout
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report['threshold_offsets'] == threshold_offsets(runner.model).tolist()
