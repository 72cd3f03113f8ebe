"""The plain-PyTorch DyT core: dispatcher, adapters, block modes, ViT, losses."""
import math

import pytest
import torch
import torch.nn.functional as F

import dyt_mm
from dyt_mm import DyTObjective, DyTViT, dyt_mode, set_mode, set_tau
from dyt_mm.models.dyt import (VARIANTS, Adapter, MoEAdapter, TokenDispatcher, build_adapter,
                               distill_kl, load_pretrained, rate_loss)

TINY = dict(arch=dict(embed_dims=64, depth=2, num_heads=4), img_size=32, patch_size=8)


pytestmark = pytest.mark.usefixtures('single_thread')


def tiny_vit(**overrides) -> DyTViT:
    torch.manual_seed(0)
    return DyTViT(**dict(TINY, **overrides))


def randomise_trainable(model, std=0.3, seed=1):
    """Non-zero adapters/dispatchers/routers, so that masks are mixed and adapters matter."""
    torch.manual_seed(seed)
    for param in model.parameters():
        if param.requires_grad:
            torch.nn.init.normal_(param, std=std)
    return model


def gate_biases(model, value, blocks=None):
    """Force dispatch: bias -1e4 skips every image token, +1e4 keeps every token."""
    for i, block in enumerate(model.blocks):
        if blocks is None or i in blocks:
            for dispatcher in block.dispatchers.values():
                torch.nn.init.constant_(dispatcher.gate.bias, value)


def images(batch=2, size=32, seed=2):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ dispatcher
def test_training_mask_is_hard_and_gradient_goes_through_the_soft_mask():
    torch.manual_seed(0)
    dispatcher = TokenDispatcher(16).train()
    x = torch.randn(4, 9, 16)
    mask = dispatcher(x, num_prefix=1)
    assert mask.shape == (4, 9)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    weights = torch.randn(4, 9)
    (mask * weights).sum().backward()
    assert dispatcher.gate.weight.grad is not None
    assert dispatcher.gate.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('tau', [0.1, 5.0])
def test_training_keep_probability_is_sigmoid_of_logit_whatever_tau(tau):
    # g1 - g2 is Logistic(0, 1): P(keep) = sigmoid(logit) at threshold 0.5.
    torch.manual_seed(0)
    dispatcher = TokenDispatcher(8, tau=tau).train()
    torch.nn.init.zeros_(dispatcher.gate.weight)
    torch.nn.init.constant_(dispatcher.gate.bias, 1.0)
    mask = dispatcher(torch.randn(100, 1001, 8), num_prefix=1)[:, 1:]
    assert mask.mean().item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=0.01)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_training_mask_stays_finite_at_extreme_noise(dtype, monkeypatch):
    # Half-precision torch.rand returns exact zeros (p ~ 2^-12 in fp16); two in one
    # token used to give inf - inf = NaN. Force that draw for every token.
    def zeros(*shape, dtype=None, device=None, **kwargs):
        return torch.zeros(*shape, dtype=dtype, device=device)

    monkeypatch.setattr(torch, 'rand', zeros)
    dispatcher = TokenDispatcher(16).train().to(dtype)
    x = torch.randn(2, 5, 16, dtype=dtype, requires_grad=True)
    mask = dispatcher(x, num_prefix=1)
    assert mask.dtype == dtype
    assert torch.isfinite(mask).all()
    mask.sum().backward()
    assert torch.isfinite(dispatcher.gate.weight.grad).all()


@pytest.mark.parametrize('threshold', [0.5, 0.3])
def test_eval_mask_is_deterministic_sigmoid_above_threshold(threshold):
    torch.manual_seed(0)
    dispatcher = TokenDispatcher(16, threshold=threshold).eval()
    torch.nn.init.normal_(dispatcher.gate.weight, std=0.3)
    x = torch.randn(3, 11, 16)
    first, second = dispatcher(x, 1), dispatcher(x, 1)
    expected = (torch.sigmoid(dispatcher.gate(x[:, 1:]).squeeze(-1)) > threshold).float()
    assert torch.equal(first, second)
    assert torch.equal(first[:, 1:], expected)
    assert 0 < expected.mean() < 1


@pytest.mark.parametrize('margin', [1e-8, -1e-8])
def test_eval_decision_keeps_a_logit_just_past_the_cut(margin):
    """sigmoid(+-1e-8) rounds to exactly 0.5 in float32; the decision, taken in logit
    space, still sees which side of the cut (logit 0 at threshold 0.5) the logit is on."""
    dispatcher = TokenDispatcher(16).eval()
    torch.nn.init.zeros_(dispatcher.gate.weight)
    torch.nn.init.constant_(dispatcher.gate.bias, margin)
    logit = dispatcher.image_logits(torch.zeros(1, 3, 16), 1)
    assert torch.sigmoid(logit).eq(0.5).all() and logit.ne(0).all()
    mask = dispatcher(torch.zeros(1, 3, 16), num_prefix=1)
    assert torch.equal(mask[:, 1:], torch.full((1, 2), float(margin > 0)))


@pytest.mark.parametrize('training', [True, False])
def test_prefix_tokens_are_always_kept(training):
    dispatcher = TokenDispatcher(16).train(training)
    torch.nn.init.constant_(dispatcher.gate.bias, -1e4)
    mask = dispatcher(torch.randn(2, 7, 16), num_prefix=2)
    assert torch.equal(mask[:, :2], torch.ones(2, 2))
    assert torch.equal(mask[:, 2:], torch.zeros(2, 5))


@pytest.mark.parametrize('tau', [0, 0.0, -1.0])
def test_tau_must_be_positive(tau):
    dispatcher = TokenDispatcher(16)
    with pytest.raises(ValueError, match='tau'):
        dispatcher.tau = tau
    with pytest.raises(ValueError, match='tau'):
        TokenDispatcher(16, tau=tau)
    with pytest.raises(ValueError, match='tau'):
        set_tau(tiny_vit(), tau)


def test_set_tau_reaches_every_dispatcher():
    model = tiny_vit(variant='attn_mlp')
    set_tau(model, 0.25)
    taus = [m.tau for m in model.modules() if isinstance(m, TokenDispatcher)]
    assert taus == [0.25] * 4


# ------------------------------------------------------------------ adapters
def test_one_expert_builds_a_plain_adapter():
    assert type(build_adapter(dict(bottleneck=4, num_experts=1), 16)) is Adapter
    assert isinstance(build_adapter(dict(bottleneck=4, num_experts=2), 16), MoEAdapter)
    model = tiny_vit(adapter=dict(bottleneck=4, num_experts=1))
    assert all(type(a) is Adapter for b in model.blocks for a in b.adapters.values())


def test_fresh_adapters_are_zero_branches():
    x = torch.randn(2, 5, 16)
    for adapter in (build_adapter(dict(type='Adapter', bottleneck=4), 16),
                    build_adapter(dict(type='MoEAdapter', bottleneck=4, num_experts=4), 16)):
        assert torch.equal(adapter(x), torch.zeros_like(x))


def test_moe_routing_is_a_softmax_over_experts_per_sample():
    torch.manual_seed(0)
    moe = MoEAdapter(16, bottleneck=4, num_experts=3)
    torch.nn.init.normal_(moe.router.weight, std=0.5)
    x = torch.randn(5, 7, 16)
    alpha = moe.expert_weights(x)
    assert alpha.shape == (5, 3)
    torch.testing.assert_close(alpha, torch.softmax(moe.router(x.mean(dim=1)), dim=-1))
    torch.testing.assert_close(alpha.sum(dim=-1), torch.ones(5))
    assert not torch.allclose(alpha[0], alpha[1])
    # a sample's routing does not depend on the rest of the batch
    torch.testing.assert_close(moe.expert_weights(x[2:3]), alpha[2:3])


def test_moe_adapter_applies_the_per_sample_merged_expert_weights():
    moe = randomise_trainable(MoEAdapter(16, bottleneck=4, num_experts=3, scale=0.5)).eval()
    x = torch.randn(4, 6, 16)
    alpha = torch.softmax(x.mean(dim=1) @ moe.router.weight.t() + moe.router.bias, dim=-1)
    expected = []
    for b in range(4):
        a = alpha[b][:, None, None]
        down_w, up_w = (a * moe.down_weight).sum(0), (a * moe.up_weight).sum(0)
        down_b = (alpha[b][:, None] * moe.down_bias).sum(0)
        up_b = (alpha[b][:, None] * moe.up_bias).sum(0)
        expected.append(0.5 * (torch.relu(x[b] @ down_w + down_b) @ up_w + up_b))
    torch.testing.assert_close(moe(x), torch.stack(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('num_experts', [1, 4])
@pytest.mark.parametrize('variant', VARIANTS)
def test_fresh_model_computes_the_plain_pretrained_vit(variant, num_experts):
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    timm_vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4,
                                 num_classes=0).eval()
    model = tiny_vit(variant=variant, adapter=dict(bottleneck=8, num_experts=num_experts)).eval()
    load_pretrained(model, timm_vit.state_dict())
    x = images(3)
    expected = timm_vit.forward_features(x)
    with dyt_mode(model, 'complete'):
        torch.testing.assert_close(model(x).tokens, expected, atol=1e-5, rtol=0)
    gate_biases(model, 1e4)  # masked mode with every token kept
    with dyt_mode(model, 'masked'):
        out = model(x)
    assert out.masks.min() == 1
    torch.testing.assert_close(out.tokens, expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ modes
def run_modes(model, x):
    outs = {}
    for mode in ('masked', 'sparse'):
        with dyt_mode(model, mode), torch.no_grad():
            outs[mode] = model(x)
    return outs['masked'], outs['sparse']


@pytest.mark.parametrize('batch', [1, 5])
@pytest.mark.parametrize('num_experts', [1, 4])
@pytest.mark.parametrize('variant', VARIANTS)
def test_sparse_equals_masked_in_eval(variant, num_experts, batch):
    model = tiny_vit(variant=variant, adapter=dict(bottleneck=8, num_experts=num_experts),
                     out_indices=(0, 1))
    randomise_trainable(model).eval()
    masked, sparse = run_modes(model, images(batch))
    assert 0 < masked.masks.mean() < 1, 'the random dispatchers should keep some tokens'
    assert torch.equal(masked.masks, sparse.masks)
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=0)
    for a, b in zip(sparse.hidden_states, masked.hidden_states):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize('bias', [-1e4, 1e4], ids=['keeps-none', 'keeps-all'])
@pytest.mark.parametrize('num_experts', [1, 4])
@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('class_token', [True, False], ids=['cls', 'no-cls'])
def test_sparse_equals_masked_when_a_layer_keeps_no_or_every_token(variant, num_experts, bias,
                                                                   class_token):
    model = tiny_vit(variant=variant, adapter=dict(bottleneck=8, num_experts=num_experts),
                     class_token=class_token)
    randomise_trainable(model).eval()
    gate_biases(model, bias, blocks=[0])
    masked, sparse = run_modes(model, images(3))
    expected = 1.0 if bias > 0 else 0.0
    assert (masked.masks[:, :len(model.blocks[0].sites)] == expected).all()
    assert torch.equal(masked.masks, sparse.masks)
    assert torch.isfinite(sparse.tokens).all()
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=0)


@pytest.mark.parametrize('variant', VARIANTS)
def test_keeping_every_token_equals_complete_mode(variant):
    model = randomise_trainable(tiny_vit(variant=variant, adapter=dict(bottleneck=8))).eval()
    gate_biases(model, 1e4)
    x = images(2)
    with dyt_mode(model, 'complete'), torch.no_grad():
        complete = model(x).tokens
    masked, sparse = run_modes(model, x)
    torch.testing.assert_close(masked.tokens, complete, atol=1e-5, rtol=0)
    torch.testing.assert_close(sparse.tokens, complete, atol=1e-5, rtol=0)


@pytest.mark.parametrize('variant', VARIANTS)
def test_complete_mode_returns_all_ones_masks(variant):
    model = randomise_trainable(tiny_vit(variant=variant)).train()
    gate_biases(model, -1e4)
    set_mode(model, 'complete')
    masks = model(images(2)).masks
    assert masks.shape == (2, len(model.sites), 16)
    assert torch.equal(masks, torch.ones_like(masks))


def test_set_mode_returns_the_previous_mode():
    model = tiny_vit()
    assert model.mode == 'masked'
    assert set_mode(model, 'sparse') == 'masked'
    assert set_mode(model, 'complete') == 'sparse'
    assert model.mode == 'complete'
    assert all(block.mode == 'complete' for block in model.blocks)


def test_dyt_mode_restores_the_mode_even_after_an_error():
    model = tiny_vit()
    set_mode(model, 'sparse')
    with dyt_mode(model, 'complete'):
        assert model.mode == 'complete'
    assert model.mode == 'sparse'
    with pytest.raises(RuntimeError):
        with dyt_mode(model, 'masked'):
            raise RuntimeError('boom')
    assert model.mode == 'sparse'


def test_unknown_mode_is_an_error_naming_it():
    model = tiny_vit()
    with pytest.raises(ValueError, match='fast'):
        set_mode(model, 'fast')
    assert model.mode == 'masked'
    with pytest.raises(ValueError, match='no DyT block'):
        set_mode(torch.nn.Linear(2, 2), 'sparse')


# ------------------------------------------------------------------ freezing
@pytest.mark.parametrize('num_experts', [1, 3])
def test_freeze_base_leaves_only_dispatchers_and_adapters_trainable(num_experts):
    model = tiny_vit(variant='attn_mlp', adapter=dict(bottleneck=4, num_experts=num_experts))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if '.dispatchers.' in n or '.adapters.' in n}
    assert trainable == expected
    assert any('.router.' in n for n in trainable) == (num_experts > 1)
    assert all('.dispatchers.' in n or '.adapters.' in n for n in trainable)
    assert 'pos_embed' not in trainable and 'blocks.0.mlp.fc1.weight' not in trainable


def test_freeze_base_false_trains_everything():
    model = tiny_vit(freeze_base=False)
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------ input sizes
def test_other_input_size_uses_bicubic_position_embeddings():
    model = randomise_trainable(tiny_vit()).eval()
    x = images(2, size=48)
    tokens, grid = model.embed(x)
    assert grid == (6, 6)
    grid_pos = model.pos_embed[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=(6, 6), mode='bicubic', align_corners=False)
    pos = torch.cat([model.pos_embed[:, :1], grid_pos.permute(0, 2, 3, 1).reshape(1, 36, 64)], 1)
    patches = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    expected = torch.cat([model.cls_token.expand(2, -1, -1), patches], 1) + pos
    torch.testing.assert_close(tokens, expected)

    # the whole forward equals a model built for 48 px holding the resized table
    big = tiny_vit(img_size=48)
    big.load_state_dict(dict(model.state_dict(), pos_embed=pos.detach()))
    big.eval()
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out.tokens, big(x).tokens)
    assert out.tokens.shape == (2, 37, 64) and out.masks.shape == (2, 2, 36)


def test_input_size_not_divisible_by_patch_is_an_error_naming_it():
    with pytest.raises(ValueError, match='44x40'):
        tiny_vit()(torch.randn(1, 3, 44, 40))
    with pytest.raises(ValueError, match='30x30'):
        tiny_vit(img_size=30)


def test_wrong_channel_count_is_an_error():
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\).*\(1, 1, 32, 32\)'):
        tiny_vit()(torch.randn(1, 1, 32, 32))


# ------------------------------------------------------------------ bad arguments
def test_unknown_variant_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'ffn'"):
        tiny_vit(variant='ffn')


def test_unknown_arch_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'gigantic'"):
        DyTViT('gigantic')
    with pytest.raises(ValueError, match='depth'):
        DyTViT(dict(embed_dims=64, num_heads=4))


@pytest.mark.parametrize('rate', [0, 1.5, -0.1])
def test_target_rate_outside_zero_one_is_an_error(rate):
    with pytest.raises(ValueError, match=f'got {rate!r}'):
        DyTObjective(target_rate=rate)


def test_target_rate_one_is_allowed():
    assert DyTObjective(target_rate=1.0).target_rate == 1.0


@pytest.mark.parametrize('bottleneck', [0, -3])
def test_bottleneck_below_one_is_an_error(bottleneck):
    with pytest.raises(ValueError, match=f'd must .* got {bottleneck}'):
        build_adapter(dict(bottleneck=bottleneck), 16)
    with pytest.raises(ValueError, match=f'got {bottleneck}'):
        tiny_vit(adapter=dict(bottleneck=bottleneck))


@pytest.mark.parametrize('num_experts', [0, -1])
def test_num_experts_below_one_is_an_error(num_experts):
    with pytest.raises(ValueError, match=f'N must .* got {num_experts}'):
        build_adapter(dict(bottleneck=4, num_experts=num_experts), 16)
    with pytest.raises(ValueError, match=f'got {num_experts}'):
        MoEAdapter(16, 4, num_experts)


# ------------------------------------------------------------------ losses
def test_rate_loss_is_squared_gap_of_the_batch_mean_keep_rate():
    masks = torch.tensor([[[1., 0., 1., 1.], [0., 0., 0., 1.]],
                          [[1., 1., 1., 1.], [1., 0., 0., 0.]]])  # 9 kept of 16
    assert rate_loss(masks, 0.25).item() == pytest.approx((9 / 16 - 0.25)**2)
    # batch-level mean, not a mean of per-sample squared gaps (4/8 and 5/8 kept)
    per_sample = ((4 / 8 - 0.25)**2 + (5 / 8 - 0.25)**2) / 2
    assert rate_loss(masks, 0.25).item() != pytest.approx(per_sample)
    assert rate_loss(masks, 9 / 16).item() == pytest.approx(0.0)


def test_distill_kl_is_teacher_to_student_kl_averaged_over_the_batch():
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[0.5, 0.5, 2.0], [1.0, 0.0, 0.0]])

    def softmax(row):
        exps = [math.exp(v) for v in row]
        return [e / sum(exps) for e in exps]

    batch = len(student)
    expected = sum(pt * (math.log(pt) - math.log(ps))
                   for s_row, t_row in zip(student.tolist(), teacher.tolist())
                   for ps, pt in zip(softmax(s_row), softmax(t_row))) / batch
    assert distill_kl(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert distill_kl(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_distill_kl_on_dense_logits_averages_over_batch_and_pixels():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 3, 4)

    def flat(logits):  # (B, K, H, W) -> (B*H*W, K)
        return logits.permute(0, 2, 3, 1).reshape(-1, 5)

    assert distill_kl(student, teacher).item() == pytest.approx(
        distill_kl(flat(student), flat(teacher)).item(), rel=1e-5)


def test_distill_kl_sends_no_gradient_to_the_teacher():
    student = torch.randn(3, 4, requires_grad=True)
    teacher = torch.randn(3, 4, requires_grad=True)
    distill_kl(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_objective_terms_follow_their_weights():
    masks = torch.tensor([[[1., 0., 0., 0.]]])
    student, teacher = torch.randn(2, 3), torch.randn(2, 3)
    objective = DyTObjective(target_rate=0.5, rate_weight=2.0, distill_weight=0.5)
    terms = objective.extra_terms(masks, student, teacher)
    assert set(terms) == {'loss_rate', 'loss_distill'}
    assert terms['loss_rate'].item() == pytest.approx(2.0 * (0.25 - 0.5)**2)
    assert terms['loss_distill'].item() == pytest.approx(0.5 * distill_kl(student, teacher).item())

    no_distill = DyTObjective(complete_weight=1.0, distill_weight=0.0)
    assert set(no_distill.extra_terms(masks, student, None)) == {'loss_rate'}
    assert no_distill.needs_complete
    assert set(DyTObjective(rate_weight=0.0).extra_terms(masks, student, teacher)) == {
        'loss_distill'}


@pytest.mark.parametrize('complete_weight,distill_weight,needed', [
    (0.0, 0.0, False), (1.0, 0.0, True), (0.0, 1.0, True)])
def test_complete_pass_is_needed_only_with_a_complete_or_distill_weight(
        complete_weight, distill_weight, needed):
    objective = DyTObjective(complete_weight=complete_weight, distill_weight=distill_weight)
    assert objective.needs_complete is needed


def test_negative_loss_weight_is_an_error():
    with pytest.raises(ValueError, match='rate_weight'):
        DyTObjective(rate_weight=-1.0)


def test_package_exports_the_core_api():
    for name in ('DyTViT', 'DyTObjective', 'ViTFlops', 'set_mode', 'dyt_mode', 'set_tau',
                 'calibrate_budget'):
        assert hasattr(dyt_mm, name)
