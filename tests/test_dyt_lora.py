"""DyT's dispatcher with LoRA (and the variant with a parallel MLP adapter beside it): what a
skipped token receives, sparse equal to masked merged and unmerged, FLOPs, export, capacity,
calibration, the configs, and the demo comparison's resumable runs (docs/dyt_lora.md)."""
import glob
import json
import os.path as osp

import pytest
import torch
from helpers import REPO, save_random_base, tiny_digits_cfg
from test_core import images, randomise_trainable

from dyt_mm import DyTViT, ViTFlops, calibrate_capacities, dyt_mode
from dyt_mm.deploy import TensorForward, export_model, load_exported, max_abs_diff
from dyt_mm.demo.comparison import Method, measure, run_methods
from dyt_mm.models.dyt import Adapter, LoRA
from dyt_mm.models.dyt.calibration import calibrate_keep_rate

pytestmark = pytest.mark.usefixtures('single_thread')
C, DEPTH = 64, 2
TINY = dict(arch=dict(embed_dims=C, depth=DEPTH, num_heads=4), img_size=32, patch_size=8)
LORA = dict(type='LoRA', rank=4)
MLP_ADAPTER = dict(type='Adapter', bottleneck=8, dropout=0.0)
METHODS = {'dyt-lora': LORA, 'dyt-lora-mlp': [LORA, MLP_ADAPTER]}


def dyt_lora(method='dyt-lora', seed=0, **overrides) -> DyTViT:
    torch.manual_seed(seed)
    return DyTViT(**dict(TINY, adapter=METHODS[method], **overrides))


def busy(model: DyTViT) -> DyTViT:
    """Non-zero LoRA, adapters and gates, so that masks are mixed and every part matters."""
    return randomise_trainable(model, std=0.2).eval()


def run(model, x, mode):
    with dyt_mode(model, mode), torch.no_grad():
        return model(x)


# ------------------------------------------------------------------ composition
def test_a_list_of_adapters_gives_each_block_lora_and_an_mlp_adapter():
    model = dyt_lora('dyt-lora-mlp', variant='attn_mlp')
    for block in model.blocks:
        # the parallel adapter sits on every dispatched site, LoRA on the linear layers
        assert isinstance(block.adapters['linears'], LoRA)
        assert isinstance(block.adapters['attn'], Adapter)
        assert isinstance(block.adapters['mlp'], Adapter)
    plain = dyt_lora('dyt-lora')
    trainable = {name: sum(p.numel() for p in m.parameters() if p.requires_grad)
                 for name, m in (('plain', plain), ('mlp', dyt_lora('dyt-lora-mlp')))}
    # per block: LoRA on q and v (2 x (C r + r C)), a gate (C + 1), the d = 8 adapter
    assert trainable['plain'] == DEPTH * (2 * 2 * C * 4 + C + 1)
    assert trainable['mlp'] - trainable['plain'] == DEPTH * (C * 8 + 8 + 8 * C + C)


def test_two_adapters_at_one_attach_point_are_an_error_naming_it():
    with pytest.raises(ValueError, match=r"attach at \['linears'\]; each attach point"):
        DyTViT(**TINY, adapter=[LORA, dict(LORA, rank=2)])
    with pytest.raises(ValueError, match=r"attach at \['mlp'\]"):
        DyTViT(**TINY, adapter=[MLP_ADAPTER, MLP_ADAPTER])


@pytest.mark.parametrize('method', sorted(METHODS))
def test_what_a_skipped_token_receives(method):
    """Every image token skipped: LoRA's adapted attention and, with the MLP adapter, the
    adapter's output, and nothing of the MLP."""
    model = busy(dyt_lora(method))
    with torch.no_grad():
        for block in model.blocks:
            block.dispatchers['mlp'].gate.bias.fill_(-1e4)
    assert run(model, images(2), 'sparse').masks.max() == 0
    # one block by hand: attention with its LoRA, then the adapter; no MLP on image tokens
    block = model.blocks[0]
    h = torch.randn(2, 17, C, generator=torch.Generator().manual_seed(5))
    with dyt_mode(model, 'sparse'), torch.no_grad():
        got, masks, _ = block(h, num_prefix=1)
        attended = h + block.ls1(block.attn(block.norm1(h), lora=block.adapters['linears']))
        expected = attended.clone()
        if 'mlp' in block.adapters:
            expected = expected + block.adapters['mlp'](attended)
        # the class token (prefix) is never skipped: it gets the MLP
        expected[:, :1] += block.ls2(block.mlp(block.norm2(attended[:, :1]),
                                               block.adapters['linears']))
    assert masks[0].max() == 0
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    no_lora = attended - block.ls1(block.attn(block.norm1(h)))
    assert no_lora.abs().max() > 1e-3  # the LoRA really adapts the attention


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize('method', sorted(METHODS))
@pytest.mark.parametrize('variant', ['mlp', 'attn_mlp'])
def test_sparse_equals_masked_unmerged_and_merged(method, variant):
    model = busy(dyt_lora(method, variant=variant))
    x = images(4)
    before = {mode: run(model, x, mode) for mode in ('masked', 'sparse', 'complete')}
    assert 0 < before['masked'].masks.mean() < 1
    torch.testing.assert_close(before['sparse'].tokens, before['masked'].tokens, atol=1e-5,
                               rtol=0)
    assert model.merge_adapters() == DEPTH
    # merging folds the LoRA only; the parallel adapter stays
    assert all(('mlp' in b.adapters) == (method == 'dyt-lora-mlp') for b in model.blocks)
    for mode, out in before.items():
        after = run(model, x, mode)
        assert torch.equal(after.masks, out.masks)
        torch.testing.assert_close(after.tokens, out.tokens, atol=1e-5, rtol=0)


@pytest.mark.parametrize('method', sorted(METHODS))
def test_flops_from_the_masks_count_the_merged_lora_as_zero(method):
    model = busy(dyt_lora(method, fused_attn=False))
    # the same model without the LoRA: what the merged one must cost
    without = busy(DyTViT(**TINY, adapter=MLP_ADAPTER if method == 'dyt-lora-mlp' else None,
                          fused_attn=False))
    x = images(3)
    masks = run(model, x, 'sparse').masks
    unmerged = ViTFlops(model).from_masks(masks)
    model.merge_adapters()
    merged = ViTFlops(model).from_masks(masks)
    assert torch.equal(merged, ViTFlops(without).from_masks(masks))
    # unmerged, LoRA on q and v runs on every token's attention: r (in + out) per target
    lora = DEPTH * 17 * 2 * 4 * (C + C)
    assert torch.equal(unmerged - merged, torch.full_like(merged, lora))


def test_merged_model_exports_in_sparse_and_capacity_mode_and_agrees(tmp_path):
    # the variant: a merged LoRA and the adapter that stays beside the MLP
    model = busy(dyt_lora('dyt-lora-mlp'))
    model.merge_adapters()
    forward = TensorForward(model)
    x = images(3)
    path = str(tmp_path / 'vit.onnx')
    export_model(forward, x, path, dynamic_batch=True)
    y = images(2, seed=7)
    with dyt_mode(forward, 'sparse'), torch.no_grad():
        expected = list(forward(y))
    assert max_abs_diff(load_exported(path)(y), expected) <= 1e-5
    # capacity: K calibrated on these inputs, so capacity equals sparse on them
    calibrate_capacities(model, [y])
    assert torch.equal(run(model, y, 'capacity').masks, run(model, y, 'sparse').masks)
    torch.testing.assert_close(run(model, y, 'capacity').tokens, run(model, y, 'sparse').tokens,
                               atol=1e-5, rtol=0)
    capacity_path = str(tmp_path / 'vit-capacity.pt2')
    export_model(forward, y, capacity_path, 'capacity')
    assert max_abs_diff(load_exported(capacity_path)(y), expected) <= 1e-5


def test_calibration_sets_the_keep_rate_of_the_variant():
    model = busy(dyt_lora('dyt-lora-mlp'))
    x = images(8)
    assert calibrate_keep_rate(model, x, 0.3) == pytest.approx(0.3, abs=0.02)
    assert run(model, x, 'sparse').masks.mean().item() == pytest.approx(0.3, abs=0.02)


# ------------------------------------------------------------------ configs
def test_the_method_has_configs_in_every_family_and_demo():
    def count(pattern):
        return len(glob.glob(osp.join(REPO, 'configs', pattern)))
    for prefix, rank in (('dyt-lora', 8), ('dyt-lora', 32)):
        for variant in (f'{prefix}-r{rank}-r0.5', f'{prefix}-r{rank}-mlp-d8-r0.5'):
            expected = {8: {'vtab1k': 19}, 32: {'image': 6, 'seg': 1, 'video': 2}}[rank]
            for folder, n in expected.items():
                assert count(f'{folder}/{variant}_*.py') == n, (folder, variant)
    for folder in ('demo', 'seg/demo', 'video/demo'):
        for method in ('dyt-lora-r8-r0.5', 'dyt-lora-r8-mlp-d8-r0.5', 'lora-r8',
                       'adaptformer-d16'):
            assert count(f'{folder}/{method}_*.py') == 1, (folder, method)


# ------------------------------------------------------------------ the demo comparison
def test_demo_comparison_trains_each_seed_once_and_tables_mean_and_std(digits_root, tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    base = save_random_base(str(tmp_path / 'base.pth'))
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), base, max_iters=2, val_interval=2,
                          config=osp.join(REPO, 'configs/demo/dyt-lora-r8-mlp-d8-r0.5'
                                          '_vit-tiny-p4_digits-target.py'))
    path = str(tmp_path / 'dyt-lora-r8-mlp-d8-r0.5_tiny.py')
    cfg.dump(path)
    methods = [Method('DyT+LoRA+MLP adapter', path, seeds=2)]
    work_dir = str(tmp_path / 'compare')
    results = run_methods(methods, digits_root, work_dir, None, 'accuracy/top1',
                          say=lambda line: None)
    assert [[r['seed'] for r in runs] for runs in results] == [[0, 1]]
    records = sorted(glob.glob(osp.join(work_dir, '*', 'seed*', 'result.json')))
    assert len(records) == 2
    # a second call trains nothing: the same records, no new run folders
    folders = sorted(glob.glob(osp.join(work_dir, '*', 'seed*', 'target_*')))
    assert run_methods(methods, digits_root, work_dir, None, 'accuracy/top1',
                       say=lambda line: None) == results
    assert sorted(glob.glob(osp.join(work_dir, '*', 'seed*', 'target_*'))) == folders
    with open(records[0]) as f:
        assert json.load(f)['keep_rate'] > 0
    report = measure(methods, results, 'top-1 %', batch_size=4, num_iters=1, train=False,
                     say=lambda line: None)
    header, row = report['table']
    assert header[:4] == ['method', 'seeds', 'top-1 %', 'test keep rate']
    metrics = [r['metric'] for r in results[0]]
    assert row[:2] == ['DyT+LoRA+MLP adapter', '2']
    assert row[2].startswith(f'{sum(metrics) / 2:.1f} ± ')
    assert report['rows'][0]['lora_merged']  # measured as deployed
