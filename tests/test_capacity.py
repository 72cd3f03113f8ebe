"""The static-shape capacity mode: equal to sparse within capacity, overflow counted, export."""
import pytest
import torch
from helpers import TINY_VIT
from test_deploy import images, with_busy_dispatchers
from test_merging import tiny_vit as tiny_merging_vit
from test_swin import tiny_swin

from dyt_mm import (DyTViT, calibrate_capacities, capacity_overflow, dyt_mode,
                    reset_capacity_overflow, set_capacities)
from dyt_mm.deploy import TensorForward, export_model, load_exported, max_abs_diff
from dyt_mm.models.dyt import RandomDispatcher, capacities

pytestmark = pytest.mark.usefixtures('single_thread')
TINY_ARCH = dict(embed_dims=64, depth=3, num_heads=2)


def run(model, x, mode):
    with dyt_mode(model, mode), torch.no_grad():
        return model(x)


def tiny_vit(**options):
    torch.manual_seed(0)
    return with_busy_dispatchers(DyTViT(**dict(TINY_VIT, arch=TINY_ARCH), **options).eval())


def kept_per_sample(masks, num_prefix):
    """``(B, S)`` kept tokens per sample and site, prefix included (token-level dispatch)."""
    return masks.sum(dim=-1) + num_prefix


MODELS = {
    'mlp': lambda: tiny_vit(variant='mlp'),
    'attn_mlp': lambda: tiny_vit(variant='attn_mlp'),
    'layer': lambda: tiny_vit(variant='layer'),
    'tome': lambda: tiny_merging_vit(),
    'swin': lambda: tiny_swin(),
    'random': lambda: tiny_vit(variant='attn_mlp', dispatch=dict(type='RandomDispatcher')),
}


@pytest.mark.parametrize('kind', MODELS)
def test_capacity_equals_sparse_when_no_site_keeps_more_than_k(kind):
    model = MODELS[kind]()
    x = images(4)
    expected = run(model, x, 'sparse')
    assert 0 < expected.masks.mean() < 1
    # quantile 1: the largest counts, so every site fits these inputs
    calibrated = calibrate_capacities(model, [x])
    lengths = model.site_lengths()
    assert len(calibrated) == len(lengths) and all(1 <= k <= n for k, n in
                                                   zip(calibrated, lengths))
    assert any(k < n for k, n in zip(calibrated, lengths))  # some sites really skip tokens
    out = run(model, x, 'capacity')
    assert torch.equal(out.masks, expected.masks)
    assert (out.tokens - expected.tokens).abs().max() <= 1e-5
    assert capacity_overflow(model) == {}


def test_random_dispatcher_ranks_by_its_mask():
    model = MODELS['random']()
    assert isinstance(model.blocks[0].dispatchers['mlp'], RandomDispatcher)
    mask, score = model.blocks[0].dispatchers['mlp'].ranked(torch.randn(2, 17, 64), 1)
    assert torch.equal(mask, score)


def test_layers_that_keep_nothing_or_everything():
    """No class token: the first layer keeps no token (K is then 1, a filler token that
    contributes nothing), the second every token, the third some."""
    vit = tiny_vit(variant='attn_mlp', class_token=False)
    with torch.no_grad():
        for block, bias in zip(vit.blocks, (-1e4, 1e4)):
            for dispatcher in block.dispatchers.values():
                dispatcher.gate.bias.fill_(bias)
    x = images(3)
    expected = run(vit, x, 'sparse')
    assert calibrate_capacities(vit, [x])[:4] == [1, 1, 16, 16]
    out = run(vit, x, 'capacity')
    assert torch.equal(out.masks, expected.masks)
    assert (out.tokens - expected.tokens).abs().max() <= 1e-5


def test_overflow_drops_the_lowest_kept_tokens_and_counts_them():
    vit = tiny_vit(variant='mlp')
    x = images(4)
    expected = run(vit, x, 'sparse')
    kept = kept_per_sample(expected.masks, vit.num_prefix)
    # only the last site is short of room: the masks up to it are sparse mode's
    ks = kept.max(dim=0).values.long().tolist()
    ks[-1] -= 3
    set_capacities(vit, ks)
    out = run(vit, x, 'capacity')
    dropped = (kept[:, -1] - ks[-1]).clamp(min=0).sum().item()
    assert dropped >= 3
    assert capacity_overflow(vit) == {f'l{len(ks) - 1}': dropped}
    assert (out.tokens - expected.tokens).abs().max() > 1e-3
    run(vit, x, 'capacity')  # counts add up until reset
    assert capacity_overflow(vit) == {f'l{len(ks) - 1}': 2 * dropped}
    reset_capacity_overflow(vit)
    assert capacity_overflow(vit) == {}


def test_capacity_export_has_static_shapes_and_equals_sparse(tmp_path):
    vit = tiny_vit(variant='attn_mlp')
    x = images(3)
    calibrate_capacities(vit, [x, images(2, seed=4)])
    forward = TensorForward(vit)
    with dyt_mode(forward, 'capacity'):
        program = torch.export.export(forward, (x, ), dynamic_shapes=(
            {0: torch.export.Dim('batch', min=1)}, ))
    assert not [n for n in program.graph.nodes if 'nonzero' in str(n.target)]
    # one symbolic size, the batch (backed: s...), no data-dependent one (unbacked: u...)
    assert [str(size)[0] for size in program.range_constraints] == ['s']
    for fmt in ('pt2', 'onnx'):
        path = str(tmp_path / f'vit.{fmt}')
        export_model(forward, x, path, 'capacity', dynamic_batch=True)
        exported = load_exported(path)
        for batch, seed in ((3, 3), (2, 4)):  # the inputs the capacities cover
            inputs = images(batch, seed=seed)
            with dyt_mode(forward, 'sparse'), torch.no_grad():
                assert max_abs_diff(exported(inputs), list(forward(inputs))) <= 1e-5


def test_bad_capacities_are_named():
    vit = tiny_vit(variant='mlp')
    with pytest.raises(ValueError, match="capacity mode needs each site's capacity; the 'mlp' "
                                         'site .*dyt_mm.set_capacities'):
        run(vit, images(1), 'capacity')
    with pytest.raises(ValueError, match='capacity of site l0 must be an int >= 1, got 0'):
        set_capacities(vit, 0)
    with pytest.raises(ValueError, match=r'one per site \(3: l0, l1, l2\), got 2'):
        set_capacities(vit, [4, 5])
    with pytest.raises(ValueError, match='capacity of site l2 must be at most its 17 tokens'):
        set_capacities(vit, [4, 5, 18])
    with pytest.raises(ValueError, match=r'quantile must lie in \(0, 1\], got 0'):
        calibrate_capacities(vit, [images(1)], quantile=0)
    assert capacities(vit) == {}
    assert set_capacities(vit, 17) == [17] * 3 and capacities(vit) == dict(l0=17, l1=17, l2=17)


def test_calibrating_through_a_wrapper_leaves_each_module_in_its_mode():
    """The export wrapper is a new module (train mode) around an eval model: after
    calibration the model must not be in train mode (its dispatchers would sample)."""
    vit = tiny_vit(variant='mlp')
    forward = TensorForward(vit)
    calibrate_capacities(forward, [images(2)])
    assert forward.training and not any(module.training for module in vit.modules())
