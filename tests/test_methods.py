"""The paper's comparison methods on the one DyT ViT: registered adapters and dispatchers,
LoRA merging, VPT-deep prompts, sample-level and random dispatch, the baselines."""
import re

import pytest
import torch
from torch import nn

from dyt_mm import DyTViT, ViTFlops, dyt_mode
from dyt_mm.models.dyt import (LoRA, RandomDispatcher, SampleDispatcher, TokenDispatcher,
                               VPTPrompts)
from test_core import TINY, images, randomise_trainable
from test_flops import fvcore_flops

pytestmark = pytest.mark.usefixtures('single_thread')

C, DEPTH, N_IMAGE = 64, 2, 16  # TINY: 32 px, patch 8 -> 16 image tokens
NO_DYT_LOSS = dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0)
# method -> DyTViT options; the same dicts the configs use
METHODS = {
    'dyt': dict(adapter=dict(type='Adapter', bottleneck=8)),
    'adaptformer': dict(adapter=dict(type='Adapter', bottleneck=8), dispatch=None),
    'lora': dict(adapter=dict(type='LoRA', rank=4), dispatch=None),
    'vpt': dict(adapter=dict(type='VPTPrompts', num_prompts=3), dispatch=None),
    'full': dict(adapter=None, dispatch=None, freeze_base=False),
    'linear': dict(adapter=None, dispatch=None),
    'dynamic-full': dict(adapter=None, freeze_base=False),
    'sample-dispatch': dict(dispatch=dict(type='SampleDispatcher')),
    'random-token': dict(dispatch=dict(type='RandomDispatcher', rate=0.5)),
    'random-sample': dict(dispatch=dict(type='RandomDispatcher', rate=0.5, level='sample')),
}
BASE_PARAMS = sum(p.numel() for p in DyTViT(**TINY, adapter=None, dispatch=None).parameters())
# trainable parameters of the tiny ViT per method, by formula
TRAINABLE = {
    'dyt': DEPTH * ((2 * C * 8 + 8 + C) + (C + 1)),  # adapter + token gate per layer
    'adaptformer': DEPTH * (2 * C * 8 + 8 + C),
    'lora': DEPTH * 2 * (2 * C * 4),  # q and v: C x r down + r x C up each
    'vpt': DEPTH * 3 * C,
    'full': BASE_PARAMS,
    'linear': 0,
    'dynamic-full': BASE_PARAMS + DEPTH * (C + 1),
    'sample-dispatch': DEPTH * ((2 * C * 64 + 64 + C) + (C + 1)),  # default adapter d = 64
    'random-token': DEPTH * (2 * C * 64 + 64 + C),  # nothing learned in the dispatcher
    'random-sample': DEPTH * (2 * C * 64 + 64 + C),
}


def tiny(method, seed=0, **overrides) -> DyTViT:
    torch.manual_seed(seed)
    return DyTViT(**{**TINY, **METHODS[method], **overrides})


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('method', METHODS)
def test_trainable_parameters_follow_the_formula(method):
    assert trainable(tiny(method)) == TRAINABLE[method]


def test_vit_b_counts_match_the_papers_rows():
    # LoRA on q and v, 2 C r each per layer: r = 8 -> 0.29 M (VTAB-1K), r = 32 -> 1.18 M
    # (complete data sets)
    assert round(12 * 2 * (2 * 768 * 8) / 1e6, 2) == 0.29
    assert round(12 * 2 * (2 * 768 * 32) / 1e6, 2) == 1.18  # the paper prints 1.19 for d = 64 too
    # VPT-deep with 8 prompts per layer: 0.07 M (complete data sets)
    assert round(12 * 8 * 768 / 1e6, 2) == 0.07


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('variant', ['mlp', 'layer'])
def test_every_method_runs_in_the_three_modes_with_sparse_equal_to_masked(method, variant):
    model = randomise_trainable(tiny(method, variant=variant, out_indices=(0, 1))).eval()
    x = images(4)
    outs = {}
    for mode in ('masked', 'sparse', 'complete'):
        with dyt_mode(model, mode), torch.no_grad():
            outs[mode] = model(x)
    masked, sparse = outs['masked'], outs['sparse']
    assert masked.tokens.shape == (4, 1 + N_IMAGE, C)
    assert torch.equal(masked.masks, sparse.masks)
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=0)
    for a, b in zip(sparse.hidden_states, masked.hidden_states):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    if model.has_dispatch:
        assert 0 < masked.masks.mean() < 1, 'some tokens should be skipped, some kept'
    else:
        assert masked.masks.min() == 1  # nothing is skipped without a dispatcher
        torch.testing.assert_close(outs['complete'].tokens, masked.tokens, atol=1e-6, rtol=0)


@pytest.mark.parametrize('method', ['sample-dispatch', 'random-sample'])
def test_sample_level_dispatch_decides_once_per_sample(method):
    model = randomise_trainable(tiny(method)).eval()
    with dyt_mode(model, 'sparse'), torch.no_grad():
        masks = model(images(8)).masks  # (B, sites, N_image)
    per_sample = masks.amax(dim=-1)
    assert torch.equal(masks, per_sample[..., None].expand_as(masks))
    assert 0 < per_sample.mean() < 1


@pytest.mark.parametrize('method', ['dyt', 'sample-dispatch', 'random-token', 'random-sample'])
def test_sparse_flops_of_each_dispatcher_follow_the_masks(method):
    # fvcore traces what sparse execution really computes; a skipped sample skips its
    # class token too
    model = randomise_trainable(tiny(method, fused_attn=False)).eval()
    with dyt_mode(model, 'sparse'), torch.no_grad():
        for i in range(4):
            x = images(1, seed=i)
            masks = model(x).masks
            assert ViTFlops(model).from_masks(masks).tolist() == [fvcore_flops(model, x)]


def test_random_dispatch_is_fresh_in_training_and_keyed_by_content_in_eval():
    dispatcher = RandomDispatcher(C, rate=0.3)
    x = torch.randn(64, 1 + 400, C)
    first = dispatcher.train()(x, 1)
    assert not torch.equal(first, dispatcher(x, 1))
    assert torch.equal(first[:, :1], torch.ones(64, 1))
    assert first[:, 1:].mean().item() == pytest.approx(0.3, abs=0.01)
    dispatcher.eval()
    # each sample's mask follows the sample when the batch is reordered
    assert torch.equal(dispatcher(x.flip(0), 1), dispatcher(x, 1).flip(0))
    assert not any(p.requires_grad for p in dispatcher.parameters())
    # the seed is saved with the model, so a reloaded model makes the same decisions
    again = RandomDispatcher(C, rate=0.3)
    assert not torch.equal(again.eval()(x, 1), dispatcher(x, 1))
    again.load_state_dict(dispatcher.state_dict())
    assert torch.equal(again(x, 1), dispatcher(x, 1))


@pytest.mark.parametrize('method', ['random-token', 'random-sample'])
@pytest.mark.parametrize('mode', ['masked', 'sparse'])
def test_random_dispatch_mask_of_a_sample_is_the_same_at_any_batch_size_and_place(method, mode):
    model = tiny(method).eval()
    x = images(8, seed=5)
    with dyt_mode(model, mode), torch.no_grad():
        in_batch = model(x).masks  # (B, sites, N_image)
        alone = torch.cat([model(x[i:i + 1]).masks for i in range(8)])
        order = torch.tensor([3, 7, 0, 5, 1, 6, 2, 4])
        shuffled = model(x[order]).masks
    assert torch.equal(alone, in_batch)
    assert torch.equal(shuffled, in_batch[order])
    with dyt_mode(model, 'sparse' if mode == 'masked' else 'masked'), torch.no_grad():
        assert torch.equal(model(x).masks, in_batch)  # and the same in the other mode


def test_random_dispatch_gives_different_images_different_masks():
    model = tiny('random-token').eval()
    with dyt_mode(model, 'sparse'), torch.no_grad():
        # at batch size 1, as a deployed model sees them
        masks = torch.cat([model(images(1, seed=i)).masks for i in range(6)])
    for site in range(masks.shape[1]):
        assert len({tuple(m.tolist()) for m in masks[:, site]}) == 6, f'site {site}'


@pytest.mark.parametrize('level', ['token', 'sample'])
def test_random_dispatch_keeps_rate_r_over_many_samples_at_every_position(level):
    torch.manual_seed(0)
    dispatcher = RandomDispatcher(C, rate=0.3, level=level).eval()
    # a shared offset, as in a ViT's residual stream, must not make the samples alike
    x = torch.randn(2000, 1 + 64, C) + 3.0
    kept = dispatcher(x, 1)[:, 1:]
    # 2000 samples: 3 sigma is 0.004 for tokens, 0.03 for whole samples
    assert kept.mean().item() == pytest.approx(0.3, abs=0.01 if level == 'token' else 0.03)
    if level == 'token':  # no fixed pattern: every position is kept at the rate r
        assert kept.mean(dim=0).sub(0.3).abs().max().item() < 0.06  # 5.8 sigma of 2000 draws
        # a sample keeps about r of its tokens, spread as independent draws would be
        spread = kept.mean(dim=1).std().item()
        assert spread == pytest.approx((0.3 * 0.7 / 64)**0.5, rel=0.1)


def test_random_dispatch_exports_and_the_exported_mask_follows_each_sample():
    # no host sync and no generator in eval: torch.export traces it with a symbolic batch
    dispatcher = RandomDispatcher(C, rate=0.5).eval()
    x = torch.randn(8, 1 + N_IMAGE, C)
    program = torch.export.export(dispatcher, (x, 1),
                                  dynamic_shapes=({0: torch.export.Dim('batch')}, None))
    for batch in (x[:1], x[5:8], x):
        assert torch.equal(program.module()(batch, 1), dispatcher(batch, 1))


def test_sample_dispatcher_trains_its_gate_through_the_pooled_tokens():
    torch.manual_seed(0)
    dispatcher = SampleDispatcher(C).train()
    mask = dispatcher(torch.randn(6, 9, C), num_prefix=1)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))
    (mask * torch.randn(6, 9)).sum().backward()
    assert dispatcher.gate.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ LoRA
# target sets covering every layer PEFT's target_modules may name here
LORA_TARGETS = [('q', 'v'), ('q', 'k', 'v', 'proj'), ('fc1', 'fc2'), ('k', 'proj', 'fc2')]


def lora(targets=('q', 'v'), rank=4, **overrides) -> DyTViT:
    return tiny('lora', adapter=dict(type='LoRA', rank=rank, targets=targets), **overrides)


def peft_lora_params(targets, rank=4):
    """What HF PEFT gives per block: rank x (in + out) per target linear layer."""
    shapes = dict(q=(C, C), k=(C, C), v=(C, C), proj=(C, C), fc1=(C, 4 * C), fc2=(4 * C, C))
    return sum(rank * sum(shapes[t]) for t in targets)


@pytest.mark.parametrize('targets', LORA_TARGETS)
def test_lora_trains_one_low_rank_pair_per_target_as_peft(targets):
    model = lora(targets)
    assert trainable(model) == DEPTH * peft_lora_params(targets)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {f'blocks.{i}.adapters.linears.updates.{t}.{part}.weight'
                     for i in range(DEPTH) for t in targets for part in ('down', 'up')}


def test_lora_on_q_and_v_adds_separate_updates_and_leaves_k():
    model = randomise_trainable(lora(), std=0.2).eval()
    block = model.blocks[0]
    updates = block.adapters['linears'].updates
    x = torch.randn(2, 5, C)
    with torch.no_grad():
        expected = block.attn.qkv(x)
        expected[..., :C] += x @ updates['q'].down.weight.T @ updates['q'].up.weight.T
        expected[..., 2 * C:] += x @ updates['v'].down.weight.T @ updates['v'].up.weight.T
        torch.testing.assert_close(block.attn.project(x, block.adapters['linears']), expected)


def test_a_fresh_lora_computes_the_base_model():
    base = randomise_trainable(tiny('full')).eval()
    model = lora(('q', 'k', 'v', 'proj', 'fc1', 'fc2')).eval()
    missing = model.load_state_dict(base.state_dict(), strict=False).missing_keys
    assert missing and all('.adapters.linears.' in k for k in missing)
    x = images(3)
    with torch.no_grad():
        torch.testing.assert_close(model(x).tokens, base(x).tokens, atol=1e-6, rtol=0)


@pytest.mark.parametrize('targets', LORA_TARGETS)
@pytest.mark.parametrize('variant', ['mlp', 'attn'])
def test_merged_lora_equals_unmerged_in_every_mode(targets, variant):
    # with token dispatch: an update of fc1 / fc2 (or, for attention dispatch, of q, k, v,
    # proj) runs only on the kept tokens, so sparse must equal masked before merging too
    model = randomise_trainable(lora(targets, variant=variant, dispatch=dict()), std=0.2).eval()
    x = images(4)
    before = {}
    with torch.no_grad():
        for mode in ('masked', 'sparse', 'complete'):
            with dyt_mode(model, mode):
                before[mode] = model(x)
        assert 0 < before['masked'].masks.mean() < 1
        torch.testing.assert_close(before['sparse'].tokens, before['masked'].tokens,
                                   atol=1e-5, rtol=0)
        assert not torch.allclose(before['complete'].tokens, tiny('full')(x).tokens, atol=1e-3)
        assert model.merge_adapters() == DEPTH
        for mode, out in before.items():
            with dyt_mode(model, mode):
                after = model(x)
            assert torch.equal(after.masks, out.masks)
            torch.testing.assert_close(after.tokens, out.tokens, atol=1e-5, rtol=0)
    assert not any('adapters.linears' in name for name, _ in model.named_parameters())
    assert model.merge_adapters() == 0


def test_merged_lora_is_a_plain_vit():
    model = randomise_trainable(lora(('q', 'v', 'fc2')), std=0.2).eval()
    model.merge_adapters()
    tiny('linear').load_state_dict(model.state_dict())  # same keys as an ordinary ViT


@pytest.mark.parametrize('targets', LORA_TARGETS)
def test_lora_flops_count_each_target_unmerged_and_nothing_merged(targets):
    model = randomise_trainable(lora(targets, fused_attn=False)).eval()
    flops = ViTFlops(model)
    tokens = 1 + N_IMAGE
    assert flops.complete() - flops.dense() == DEPTH * tokens * peft_lora_params(targets)
    x = images(1)
    with torch.no_grad():
        assert fvcore_flops(model, x) == flops.complete()
        model.merge_adapters()
        assert fvcore_flops(model, x) == ViTFlops(model).complete() == flops.dense()


@pytest.mark.parametrize('targets', [('q', 'k', 'v', 'proj'), ('fc1', 'fc2')])
@pytest.mark.parametrize('variant', ['mlp', 'attn'])
def test_sparse_lora_flops_follow_the_masks(targets, variant):
    # the updates of the dispatched branch's layers run on its kept tokens only
    model = randomise_trainable(lora(targets, variant=variant, dispatch=dict(),
                                     fused_attn=False)).eval()
    with dyt_mode(model, 'sparse'), torch.no_grad():
        for i in range(3):
            x = images(1, seed=i)
            masks = model(x).masks
            assert 0 < masks.mean() < 1
            assert ViTFlops(model).from_masks(masks).tolist() == [fvcore_flops(model, x)]


@pytest.mark.parametrize('targets,match', [
    (('q', 'qkv'), "target 'qkv'; allowed: q, k, v, proj, fc1, fc2"),
    ('query', "target 'query'; allowed: q, k, v, proj, fc1, fc2"),
    ((), 'at least one target; allowed: q, k, v, proj, fc1, fc2'),
    (('v', 'q', 'v'), 'repeat'),
])
def test_bad_lora_targets_are_errors_naming_them_and_the_allowed_ones(targets, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        lora(targets)


def test_lora_on_a_layer_the_block_lacks_is_an_error():
    with pytest.raises(ValueError, match=r"target 'fc1' is not a linear layer.*swiglu"):
        lora(('fc1', ), mlp_act='swiglu')
    model = lora(('fc2', ), mlp_act='swiglu')  # the gated MLP has an fc2
    assert trainable(model) == DEPTH * 4 * (model.blocks[0].mlp.fc2.in_features + C)


def test_lora_that_does_not_fit_the_layer_is_an_error():
    update = LoRA(C, rank=2, targets=('q', ))
    update.fit({'q': (C, C)})
    with pytest.raises(ValueError, match='does not fit'):
        update.merge({'q': (nn.Linear(32, 96), slice(0, 32))})


# ------------------------------------------------------------------ VPT-deep
def vpt_deep_reference(model: DyTViT, x: torch.Tensor) -> torch.Tensor:
    """VPT-deep spelled out on the model's own blocks: before block i insert its prompts
    after the class token, after it drop them."""
    tokens, _ = model.embed(x)
    for block in model.blocks:
        prompts = block.adapters['prompts'].prompts.expand(len(x), -1, -1)
        joined = torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], dim=1)
        # the plain pre-norm block: no adapter, no dispatcher
        joined = joined + block.attn(block.norm1(joined))
        joined = joined + block.mlp(block.norm2(joined))
        tokens = torch.cat([joined[:, :1], joined[:, 1 + prompts.shape[1]:]], dim=1)
    return model.norm(tokens)


def test_vpt_deep_prompts_are_the_only_trainable_vit_parameters_and_keep_the_cls_output():
    model = randomise_trainable(tiny('vpt'), std=0.5).eval()
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable_names == {f'blocks.{i}.adapters.prompts.prompts' for i in range(DEPTH)}
    x = images(2)
    with torch.no_grad():
        out = model(x)
        expected = vpt_deep_reference(model, x)
    assert out.tokens.shape == (2, 1 + N_IMAGE, C)  # prompts never reach the output
    torch.testing.assert_close(out.tokens, expected, atol=1e-5, rtol=0)
    # the class token (the head's input) is where it was, and the prompts change it
    with torch.no_grad():
        plain = tiny('linear')
        plain.load_state_dict(model.state_dict(), strict=False)
        assert not torch.allclose(plain.eval()(x).tokens[:, 0], out.tokens[:, 0], atol=1e-3)


def test_vpt_flops_count_the_longer_sequence():
    model = randomise_trainable(tiny('vpt', fused_attn=False)).eval()
    flops = ViTFlops(model)
    with torch.no_grad():
        assert fvcore_flops(model, images(1)) == flops.complete() > flops.dense()


# ------------------------------------------------------------------ registry
def test_unknown_type_is_an_error_naming_it_and_the_registered_ones():
    with pytest.raises(ValueError, match="'Prefix'.*LoRA, VPTPrompts"):
        tiny('dyt', adapter=dict(type='Prefix'))
    with pytest.raises(ValueError, match="'TopK'.*SampleDispatcher"):
        tiny('dyt', dispatch=dict(type='TopK'))
    with pytest.raises(ValueError, match="level 'pixel'"):
        RandomDispatcher(C, level='pixel')


def test_configs_build_registered_kinds_by_name():
    model = tiny('dyt', variant='attn_mlp', dispatch=dict(type='SampleDispatcher', tau=2.0))
    assert all(type(d) is SampleDispatcher and d.tau == 2.0
               for b in model.blocks for d in b.dispatchers.values())
    assert type(tiny('dyt').blocks[0].dispatchers['mlp']) is TokenDispatcher
    assert isinstance(tiny('vpt').blocks[1].adapters['prompts'], VPTPrompts)
