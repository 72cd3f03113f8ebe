"""Every DyT network keeps the contract that :class:`DyTNetwork` declares and the tools use:
embedding, pooling, merging adapters, counting FLOPs, fitting pre-trained weights,
describing itself and the options its weights depend on."""
import inspect

import pytest
import torch

from dyt_mm.models.dyt import DyTNetwork, DyTSwin, DyTViT, dyt_mode, load_pretrained

pytestmark = pytest.mark.usefixtures('single_thread')

VIT = dict(arch=dict(embed_dims=64, depth=2, num_heads=4), img_size=32, patch_size=8)
SWIN = dict(arch=dict(embed_dims=32, depths=(2, 2), num_heads=(2, 4)), img_size=32,
            window_size=4)
# name -> (class, constructor options): every network the tools may meet
NETWORKS = {
    'vit': (DyTViT, VIT),
    'vit-tome': (DyTViT, dict(VIT, merge=dict(r=3))),
    'vitdet-window': (DyTViT, dict(VIT, img_size=(48, 40), class_token=False, window_size=4,
                                   global_blocks=[1])),
    'swin': (DyTSwin, SWIN),
}
POOLINGS = {'vit': ('cls_token', 'avg_featmap'), 'vit-tome': ('cls_token', 'avg_featmap'),
            'vitdet-window': ('avg_featmap', ), 'swin': ('avg_featmap', )}
# an adapter that merge_adapters folds where the network takes one (Swin: parallel only)
MERGEABLE = {'vit': 'LoRA', 'vit-tome': 'LoRA', 'vitdet-window': 'LoRA', 'swin': None}


def build(name, seed=0, **overrides):
    """The network with busy dispatchers and adapters (a mix of kept and skipped tokens)."""
    cls, options = NETWORKS[name]
    torch.manual_seed(seed)
    network = cls(**dict(options, **overrides))
    for param in network.parameters():
        if param.requires_grad:
            torch.nn.init.normal_(param, std=0.3)
    return network.eval()


def images(network, batch=2):
    return torch.randn(batch, network.in_channels, *network.img_size,
                       generator=torch.Generator().manual_seed(0))


def test_the_contract_is_enforced_at_construction():
    members = {'check_input_size', 'embed', 'pool', 'merge_adapters', 'flops_counter',
               'checkpoint_filter', 'describe', 'weight_options'}
    assert DyTNetwork.__abstractmethods__ == members
    partial = type('Partial', (DyTNetwork, ), {
        name: (lambda self, *args: None) for name in members - {'merge_adapters'}})
    with pytest.raises(TypeError, match='merge_adapters'):
        partial()


@pytest.mark.parametrize('name', NETWORKS)
def test_embed_gives_the_first_blocks_tokens_and_the_grid(name):
    network = build(name)
    x = images(network)
    with torch.no_grad():
        tokens, grid = network.embed(x)
    H, W = network.img_size
    assert grid == (H // network.patch_size, W // network.patch_size)
    width = network.blocks[0].norm1.normalized_shape[0]
    assert tokens.shape == (2, network.num_prefix + grid[0] * grid[1], width)


@pytest.mark.parametrize('name', NETWORKS)
def test_pool_gives_one_feature_per_image_and_refuses_what_it_cannot_do(name):
    network = build(name)
    with torch.no_grad():
        tokens = network(images(network)).tokens
        for how in POOLINGS[name]:
            assert network.pool(tokens, how).shape == (2, network.embed_dims)
    for how in {'cls_token', 'max'} - set(POOLINGS[name]):
        with pytest.raises(ValueError, match=how):
            network.pool(tokens, how)


@pytest.mark.parametrize('name', NETWORKS)
def test_merge_adapters_keeps_the_outputs(name):
    adapter = MERGEABLE[name]
    network = build(name, **({} if adapter is None else dict(adapter=dict(type=adapter, rank=4))))
    x = images(network)
    with torch.no_grad(), dyt_mode(network, 'sparse'):
        before = network(x)
        merged = network.merge_adapters()
        after = network(x)
    assert merged == (0 if adapter is None else network.depth)
    assert network.merge_adapters() == 0  # nothing left to merge
    assert 0 < before.masks.float().mean() < 1
    assert torch.equal(before.masks, after.masks)
    torch.testing.assert_close(after.tokens, before.tokens, atol=1e-5, rtol=0)


@pytest.mark.parametrize('name', NETWORKS)
def test_flops_counter_counts_the_kept_tokens(name):
    network = build(name)
    with torch.no_grad():
        masks = network(images(network)).masks
    counter = network.flops_counter(masks.shape[-1])
    everything = network.site_tokens(masks.shape[-1]).expand(2, -1)
    nothing = torch.zeros_like(everything)
    counted = counter.from_masks(masks)
    assert counted.shape == (2, )
    assert (counter.per_sample(nothing) < counted).all()
    assert (counted < counter.per_sample(everything)).all()
    assert counter.per_sample(everything)[0] >= counter.complete() > 0
    assert counter.dense() > 0


@pytest.mark.parametrize('name', NETWORKS)
def test_checkpoint_filter_round_trips_its_own_state_and_the_loader_fills_a_twin(name):
    network = build(name)
    state = network.state_dict()
    filtered = network.checkpoint_filter(state)
    assert list(filtered) == list(state)
    assert all(filtered[k] is state[k] for k in state)
    # the base weights through the loader: a twin of another seed then computes the same
    twin = build(name, seed=1)
    twin.load_state_dict({k: v for k, v in state.items() if network.is_dyt_param(k)},
                         strict=False)
    load_pretrained(twin, {k: v for k, v in state.items() if not network.is_dyt_param(k)})
    x = images(network)
    with torch.no_grad():
        torch.testing.assert_close(twin(x).tokens, network(x).tokens, atol=0, rtol=0)


@pytest.mark.parametrize('name', NETWORKS)
def test_describe_and_weight_options_say_how_it_was_built(name):
    cls, options = NETWORKS[name]
    network = build(name)
    assert ('Swin' if cls is DyTSwin else 'ViT') in network.describe()
    assert str(network.patch_size) in network.describe()
    # options the loader compares with a converted file's; absent from a file: the default
    parameters = inspect.signature(cls).parameters
    for option, value in network.weight_options().items():
        assert option in parameters and option not in options
        default = parameters[option].default
        assert value == (tuple(default) if isinstance(default, list) else default)
