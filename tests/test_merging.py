"""Token merging (ToMe) in the one DyT ViT, alone and with DyT, full tuning and AdaptFormer."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from helpers import run_tool, save_random_base, tiny_digits_cfg
from test_flops import fvcore_flops

from dyt_mm import DyTViT, ViTFlops, calibrate_budget, dyt_mode
from dyt_mm.models.dyt import rate_loss
from dyt_mm.analysis import DispatchProbe, build_model, load_config, visualize_dispatch
from dyt_mm.analysis.tome import MERGING_RUNS, compare_merging
from dyt_mm.analysis.visualize import group_edges
from dyt_mm.models.dyt.layers import Attention
from dyt_mm.models.dyt.merging import (MergeState, initial_state, merge_schedule,
                                       merge_tokens)

pytestmark = pytest.mark.usefixtures('single_thread')
ARCH = dict(embed_dims=64, depth=3, num_heads=4)


def tiny_vit(merge=dict(r=3), busy=True, **options):
    """A 3-block ViT on 32 px inputs (16 image tokens: 16 -> 13 -> 10 -> 7 with r = 3)."""
    torch.manual_seed(0)
    options = dict(dict(adapter=dict(bottleneck=8)), **options)
    vit = DyTViT(ARCH, img_size=32, patch_size=8, merge=merge, fused_attn=False, **options)
    torch.manual_seed(1)
    if busy:  # dispatchers that keep a mix of tokens, adapters that add something
        for param in vit.parameters():
            if param.requires_grad:
                torch.nn.init.normal_(param, std=0.3)
    return vit.eval()


def images(batch, seed=0):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ the merge itself
def test_the_most_similar_tokens_merge_into_their_size_weighted_average():
    B, T, C, r = 2, 8, 4, 2
    x = torch.randn(B, 1 + T, C)
    keys = torch.randn(B, 1 + T, 16)
    # A tokens 0 and 4 (positions 0 and 4) have the exact keys of B tokens 1 and 2
    # (positions 3 and 5); every other pair is far less similar
    keys[:, 1 + 0] = keys[:, 1 + 3]
    keys[:, 1 + 4] = keys[:, 1 + 5]
    state = MergeState(r, torch.tensor([[1., 2., 1., 3., 1., 1., 2., 1.]] * B),
                       torch.arange(T).expand(B, -1))
    out, new = merge_tokens(x, keys, 1, state)
    assert out.shape == (B, 1 + T - r, C)
    assert torch.equal(out[:, 0], x[:, 0])  # the class token is never merged
    # unmerged A tokens (positions 2, 6) first, then the four B tokens (1, 3, 5, 7)
    img, sizes = x[:, 1:], state.sizes
    torch.testing.assert_close(out[:, 1:3], img[:, [2, 6]])
    torch.testing.assert_close(out[:, 3], img[:, 1])
    torch.testing.assert_close(out[:, 4], (1 * img[:, 0] + 3 * img[:, 3]) / 4)
    torch.testing.assert_close(out[:, 5], (1 * img[:, 4] + 1 * img[:, 5]) / 2)
    assert new.sizes.tolist() == [[1., 2., 2., 4., 2., 1.]] * B
    assert new.sources.tolist() == [[3, 2, 0, 3, 4, 4, 1, 5]] * B  # patch -> its token


@pytest.mark.parametrize('num_prefix', [1, 3])
def test_merging_keeps_the_prefix_and_conserves_size_and_mass(num_prefix):
    B, T, C = 3, 15, 8
    x = torch.randn(B, num_prefix + T, C, dtype=torch.float64)
    state = initial_state(x, num_prefix, 4)
    total = x[:, num_prefix:].sum(dim=1)
    for _ in range(5):  # 15 -> 11 -> 7 -> 4 -> 2 -> 1 tokens (at most half merge per step)
        keys = torch.randn(B, x.shape[1], 16, dtype=torch.float64)
        x_before = x
        x, state = merge_tokens(x, keys, num_prefix, state)
        assert torch.equal(x[:, :num_prefix], x_before[:, :num_prefix])
        assert state.sizes.sum(dim=1).tolist() == [T] * B  # every patch is somewhere
        held = torch.stack([torch.bincount(s, minlength=x.shape[1] - num_prefix).double()
                            for s in state.sources])
        assert torch.equal(held, state.sizes)  # sizes are the patches each token holds
        # a merged token is the mean of what it holds: size-weighted sums are conserved
        torch.testing.assert_close((x[:, num_prefix:] * state.sizes[..., None]).sum(dim=1),
                                   total)
    assert x.shape[1] == num_prefix + 1
    assert [a - m for a, m in merge_schedule(T, 4, 5)] == [4, 4, 3, 2, 1]


def test_r_zero_returns_the_tokens_themselves():
    x = torch.randn(2, 17, 8)
    state = initial_state(x, 1, 0)
    assert merge_tokens(x, torch.randn(2, 17, 4), 1, state) == (x, state)


def test_proportional_attention_weighs_a_token_as_its_size():
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    x = torch.randn(2, 6, 32)
    # token 2 standing for 3 patches attends like 3 copies of it in the sequence
    bias = torch.zeros(2, 6)
    bias[:, 2] = math.log(3)
    tripled = torch.cat([x, x[:, 2:3], x[:, 2:3]], dim=1)
    with torch.no_grad():
        out, keys = attn.forward_with_keys(x, bias)
        torch.testing.assert_close(out, attn(tripled)[:, :6])
    qkv = attn.qkv(x).unflatten(-1, (3, 4, 8))
    torch.testing.assert_close(keys, qkv[:, :, 1].mean(dim=2))  # keys averaged over heads


# ------------------------------------------------------------------ in the ViT
def test_merge_r_zero_equals_no_merging_exactly():
    x = images(2)
    plain = tiny_vit(merge=None)
    for merged in (tiny_vit(merge=dict(r=0)), tiny_vit(merge=dict(r=3))):
        merged.merge_r = 0
        for mode in ('masked', 'complete', 'sparse'):
            with torch.no_grad(), dyt_mode(plain, mode), dyt_mode(merged, mode):
                a, b = plain(x), merged(x)
            assert torch.equal(a.tokens, b.tokens) and torch.equal(a.masks, b.masks)
            assert b.sources is None


def test_merging_vit_shrinks_tokens_and_sparse_equals_masked():
    vit = tiny_vit()
    x = images(3)
    with torch.no_grad():
        masked = vit(x)
        with dyt_mode(vit, 'sparse'):
            sparse = vit(x)
        with dyt_mode(vit, 'complete'):
            complete = vit(x)
    assert masked.tokens.shape == complete.tokens.shape == (3, 1 + 7, 64)
    assert vit.site_tokens(16).tolist() == [13, 10, 7]
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=1e-5)
    assert torch.equal(sparse.masks, masked.masks)
    kept = masked.masks.sum(dim=-1)
    assert (0 < kept).all() and (kept < vit.site_tokens(16)).all()
    for site, seen in enumerate(vit.site_tokens(16).tolist()):  # padding is never kept
        assert not masked.masks[:, site, seen:].any()
        assert masked.sources[:, site].max() < seen
    # masks per patch: each patch takes the decision of the token that holds it
    patch_masks = masked.masks.gather(-1, masked.sources)
    assert torch.equal(patch_masks.sum(dim=-1) > 0, kept > 0)


@pytest.mark.parametrize('method', ['dyt', 'full', 'adaptformer', 'vpt'])
def test_flops_of_merging_models_equal_fvcore(method):
    options = {'dyt': {}, 'full': dict(adapter=None, dispatch=None, freeze_base=False),
               'adaptformer': dict(dispatch=None),
               'vpt': dict(adapter=dict(type='VPTPrompts', num_prompts=2))}[method]
    vit = tiny_vit(**options)
    x = images(1)
    with torch.no_grad():
        with dyt_mode(vit, 'complete'):
            assert ViTFlops(vit).complete() == fvcore_flops(vit, x)
        with dyt_mode(vit, 'sparse'):
            masks = vit(x).masks
            assert ViTFlops(vit).from_masks(masks).tolist() == [fvcore_flops(vit, x)]
    if method == 'full':
        assert ViTFlops(vit).merged() == ViTFlops(vit).complete()


def test_vit_b_with_eight_merged_per_block_costs_13_12_gflops(monkeypatch):
    monkeypatch.setattr(DyTViT, '_init_base_weights', lambda self: None)
    for layer in (torch.nn.Linear, torch.nn.Conv2d):
        monkeypatch.setattr(layer, 'reset_parameters', lambda self: None)
    flops = ViTFlops(DyTViT('base', merge=dict(r=8), adapter=None, dispatch=None))
    assert flops.dense() == pytest.approx(17.58e9, rel=0.005)
    assert flops.merged() == flops.complete() == pytest.approx(13.12e9, rel=0.005)


def test_training_pass_reaches_the_dispatchers_and_the_rate_counts_seen_tokens():
    vit = tiny_vit(busy=False).train()
    out = vit(images(4))
    seen = vit.site_tokens(16)
    rate = out.masks.sum() / (4 * seen.sum())
    assert rate_loss(out.masks, 0.3, seen).item() == pytest.approx(((rate - 0.3)**2).item())
    rate_loss(out.masks, 0.3, seen).backward()
    assert all(b.dispatchers['mlp'].gate.weight.grad.abs().sum() > 0 for b in vit.blocks)


def test_full_tuning_with_merging_trains_every_weight():
    vit = tiny_vit(adapter=None, dispatch=None, freeze_base=False, busy=False).train()
    # (a plain sum of a LayerNorm output is constant: weigh the channels)
    (vit(images(2)).tokens[:, 0] @ torch.randn(64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vit.parameters())


def test_calibration_counts_the_tokens_each_merged_site_saw():
    vit = tiny_vit()
    result = calibrate_budget(vit, [images(8, seed=s) for s in range(2)], 0.5, per_layer=True)
    assert result['converged']
    assert result['keep_rate_per_site'] == pytest.approx([0.5] * 3, abs=0.05)
    with torch.no_grad():
        masks = torch.cat([vit(images(8, seed=s)).masks for s in range(2)])
    measured = masks.sum(dim=(0, 2)) / (16 * vit.site_tokens(16))
    torch.testing.assert_close(measured.double(), torch.tensor(result['keep_rate_per_site'],
                                                               dtype=torch.float64))


def test_compare_merging_times_four_runs_and_restores_the_model():
    from dyt_mm.cls import DyTVisionTransformer
    backbone = DyTVisionTransformer(arch=ARCH, img_size=32, patch_size=8, merge=dict(r=3),
                                    adapter=dict(bottleneck=8)).eval()
    vit = backbone.vit
    report = compare_merging(backbone, images(4), 3, num_iters=1, warmup=0,
                             calibrate_rate=0.5)
    for run in MERGING_RUNS:
        assert report[f'throughput_{run}'] > 0
        assert report[f'efficiency_{run}'] == pytest.approx(report[f'speedup_{run}'] /
                                                            report[f'ceiling_{run}'])
    assert report['keep_rate_dyt'] == report['keep_rate_dyt_tome'] == 0.5
    assert report['gflops_dyt_tome'] < min(report['gflops_dyt'], report['gflops_tome'])
    assert report['gflops_tome'] == pytest.approx(ViTFlops(vit).complete() / 1e9)
    assert vit.merge_r == 3 and vit.mode == 'masked'
    assert all(b.dispatchers['mlp'].threshold_offset == 0 for b in vit.blocks)  # restored


# ------------------------------------------------------------------ bad input
def test_bad_merge_settings_are_errors_naming_them():
    with pytest.raises(ValueError, match=r"merge must be None or dict\(r=R\).*'k': 2"):
        DyTViT(ARCH, img_size=32, patch_size=8, merge=dict(k=2))
    with pytest.raises(ValueError, match='integer >= 0, got -1'):
        DyTViT(ARCH, img_size=32, patch_size=8, merge=dict(r=-1))
    with pytest.raises(ValueError, match="needs variant='mlp'.*'attn'"):
        DyTViT(ARCH, img_size=32, patch_size=8, merge=dict(r=2), variant='attn')
    with pytest.raises(ValueError, match='rotary position'):
        DyTViT(ARCH, img_size=32, patch_size=8, merge=dict(r=2), rope_ref_grid=4)


@pytest.mark.parametrize('toolbox', ['seg', 'video'])
def test_segmentation_and_video_refuse_merging(toolbox):
    if toolbox == 'seg':
        from dyt_mm.seg import DyTSegViT as Backbone
        options = dict(out_indices=(1, 2))
    else:
        from dyt_mm.video import DyTVideoViT as Backbone
        options = dict(num_frames=2)
    with pytest.raises(ValueError, match=rf'{Backbone.__name__} cannot merge tokens '
                                         r"\(merge=\{'r': 2\}\).*classification"):
        Backbone(arch=ARCH, img_size=32, patch_size=8, merge=dict(r=2), **options)


# ------------------------------------------------------------------ tools
def test_group_edges_outline_each_merged_token():
    # a 3 x 2 grid of 2 px patches: the top row is one merged token, the others single patches
    sources = np.array([0, 0, 1, 2, 3, 4])
    edges = group_edges(sources, 6, 4, 2)
    assert not edges[:2].any()  # inside the merged token
    assert edges[2].all()  # its border with the two tokens below
    assert not edges[3:].any()  # single-patch tokens are not outlined


def test_train_then_draw_a_dyt_tome_model(digits_root, tmp_path):
    base = save_random_base(str(tmp_path / 'base.pth'))
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'), base, max_iters=3,
                          val_interval=3, **{'model.backbone.merge': dict(r=3)})
    cfg.custom_hooks = [dict(type='DyTHook', save_trainable_only=True)]
    cfg_path = str(tmp_path / 'tome.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path, env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = [json.loads(line) for line in open(next(
        osp.join(root, f) for root, _, files in os.walk(tmp_path / 'work') for f in files
        if f.endswith('.json') and f != 'scalars.json'))]
    train, val = logs[-2], logs[-1]
    for key in ('loss_rate', 'loss_distill', 'loss_complete', 'keep_rate_l1', 'gflops'):
        assert key in train, key
    assert 0 < val['val/keep_rate'] < 1 if 'val/keep_rate' in val else 0 < val['keep_rate'] < 1

    folder = osp.join(digits_root, 'target/val/3')
    image = osp.join(folder, sorted(os.listdir(folder))[0])
    out = str(tmp_path / 'tome.png')
    cfg = load_config(cfg_path)
    model = build_model(cfg, str(tmp_path / 'work' / 'iter_3.pth'))
    report = visualize_dispatch(model, cfg, image, out)
    assert len(report['keep_rate_per_site']) == 2 and osp.getsize(out) > 10_000
    # the keep rates are over the tokens each site saw, not over the original patches
    with DispatchProbe(model) as probe, torch.no_grad():
        model.backbone(torch.randn(1, 3, 32, 32))
    assert probe.calls[0].site_tokens.tolist() == [13, 10]
