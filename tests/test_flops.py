"""The analytic FLOP counts of ViTFlops against fvcore's traced counts."""
import warnings

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from dyt_mm import DyTViT, ViTFlops, dyt_mode
from dyt_mm.models.dyt import VARIANTS


pytestmark = pytest.mark.usefixtures('single_thread')


def tiny_vit(variant, num_experts=1, **overrides):
    torch.manual_seed(0)
    model = DyTViT(dict(embed_dims=64, depth=2, num_heads=4), img_size=32, patch_size=8,
                   variant=variant, adapter=dict(bottleneck=8, num_experts=num_experts),
                   fused_attn=False, **overrides)
    # random dispatchers keep a mix of tokens; random routers/adapters are harmless
    torch.manual_seed(1)
    for param in model.parameters():
        if param.requires_grad:
            torch.nn.init.normal_(param, std=0.3)
    return model.eval()


def fvcore_flops(model, x) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings from the data-dependent sparse path
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total()


def images(batch, size=32, seed=0):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('arch,paper', [('base', 17.58e9), ('large', 61.60e9)])
def test_dense_vit_flops_are_the_papers(arch, paper, monkeypatch):
    # only the shapes matter: skip the (slow) random initialisation of 86 M / 303 M weights
    monkeypatch.setattr(DyTViT, '_init_base_weights', lambda self: None)
    for layer in (torch.nn.Linear, torch.nn.Conv2d):
        monkeypatch.setattr(layer, 'reset_parameters', lambda self: None)
    flops = ViTFlops(DyTViT(arch)).dense()
    assert flops == pytest.approx(paper, rel=0.005)


@pytest.mark.parametrize('num_experts', [1, 3])
@pytest.mark.parametrize('variant', VARIANTS)
def test_complete_matches_fvcore(variant, num_experts):
    model = tiny_vit(variant, num_experts)
    with dyt_mode(model, 'complete'):
        counted = fvcore_flops(model, images(1))
    assert ViTFlops(model).complete() == counted


def test_complete_adds_the_adapters_to_dense():
    dense, complete = ViTFlops(tiny_vit('mlp')).dense(), ViTFlops(tiny_vit('mlp')).complete()
    assert complete - dense == 2 * 2 * 17 * 64 * 8  # depth x (down + up) x tokens x C x d


@pytest.mark.parametrize('num_experts', [1, 3])
@pytest.mark.parametrize('variant', VARIANTS)
def test_sparse_flops_follow_the_masks(variant, num_experts):
    model = tiny_vit(variant, num_experts)
    x = images(1)
    with dyt_mode(model, 'sparse'), torch.no_grad():
        masks = model(x).masks
        counted = fvcore_flops(model, x)
    assert 0 < masks.mean() < 1
    assert ViTFlops(model).from_masks(masks).tolist() == [counted]


@pytest.mark.parametrize('variant', ['mlp', 'attn'])
def test_per_sample_flops_of_a_batch_equal_each_sample_run_alone(variant):
    model = tiny_vit(variant)
    x = images(3, seed=1)
    with dyt_mode(model, 'sparse'), torch.no_grad():
        per_sample = ViTFlops(model).from_masks(model(x).masks)
        alone = [fvcore_flops(model, x[i:i + 1]) for i in range(3)]
    assert per_sample.tolist() == alone
    assert len(set(alone)) > 1, 'samples should keep different numbers of tokens'


def test_per_sample_flops_at_another_input_size():
    model = tiny_vit('mlp')
    x = images(1, size=48)
    with dyt_mode(model, 'sparse'), torch.no_grad():
        masks = model(x).masks
        counted = fvcore_flops(model, x)
    assert ViTFlops(model, grid=(6, 6)).from_masks(masks).tolist() == [counted]


def test_keeping_every_token_costs_complete_plus_the_dispatchers():
    model = tiny_vit('attn_mlp')
    flops = ViTFlops(model)
    kept = torch.full((2, len(model.sites)), 16)
    dispatchers = len(model.sites) * 16 * 64
    assert flops.per_sample(kept).tolist() == [flops.complete() + dispatchers] * 2
