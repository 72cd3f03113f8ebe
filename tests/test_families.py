"""Each pre-trained ViT family as a DyT base: exact against timm, sparse == masked, FLOPs.

The reference is timm's own model (``pretrained=False``, reduced width/depth) with
every tensor perturbed; its state dict goes through the same renaming and checks
as a downloaded checkpoint, and the DyT ViT options come from
:func:`infer_vit_config`, i.e. from the checkpoint alone.
"""
import warnings

import pytest
import torch
from torch import nn

from dyt_mm import DyTViT, ViTFlops, dyt_mode
from dyt_mm.models.dyt.families import family_options, infer_vit_config
from dyt_mm.models.dyt.pretrained import convert_for, load_pretrained
from dyt_mm.models.dyt.weight_names import to_vit_names

pytestmark = pytest.mark.usefixtures('single_thread')
# ViT-T's width, so that the heads follow from timm's standard widths
TINY = dict(embed_dim=192, depth=2, num_heads=3, num_classes=10)


def timm_family(family):
    """A tiny timm model of ``family`` and the input size it was built for."""
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer
    if family == 'deit-distilled':
        return VisionTransformerDistilled(img_size=32, patch_size=8, **TINY), 32
    if family == 'mae':  # fine-tuned: global average pooling + fc_norm, no final norm
        return VisionTransformer(img_size=32, patch_size=8, global_pool='avg', **TINY), 32
    if family in ('clip', 'clip-quickgelu'):  # the weights cannot tell the activation
        act = 'quick_gelu' if family == 'clip-quickgelu' else 'gelu'
        return VisionTransformer(img_size=32, patch_size=8, pre_norm=True, act_layer=act,
                                 norm_layer=nn.LayerNorm, **TINY), 32
    if family == 'dinov2':  # with registers, patch 14
        return VisionTransformer(img_size=56, patch_size=14, init_values=1e-5, reg_tokens=4,
                                 no_embed_class=True, **TINY), 56
    if family == 'eva02':  # as eva02_base_patch16_clip_224; RoPE on timm's 16 x 16 grid
        return Eva(img_size=32, patch_size=8, mlp_ratio=4 * 2 / 3, qkv_fused=False,
                   swiglu_mlp=True, scale_mlp=True, scale_attn_inner=True, use_rot_pos_emb=True,
                   ref_feat_shape=(16, 16), global_pool='token', **TINY), 32
    if family == 'eva02-mim':  # as eva02_base_patch14_224: q/v biases, MLP norm, avg + fc_norm
        return Eva(img_size=56, patch_size=14, mlp_ratio=4 * 2 / 3, swiglu_mlp=True,
                   scale_mlp=True, use_rot_pos_emb=True, ref_feat_shape=(16, 16), **TINY), 56
    raise KeyError(family)


FAMILIES = ('deit-distilled', 'mae', 'clip', 'clip-quickgelu', 'dinov2', 'eva02', 'eva02-mim')
# what the checkpoint alone tells (the activation of CLIP is not in its weights)
FOUND = {'clip-quickgelu': 'clip', 'eva02-mim': 'eva02'}


def perturbed(model):
    torch.manual_seed(0)
    with torch.no_grad():  # every tensor, so a swapped or dropped weight shows
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def dyt_twin(family, **overrides):
    """(timm model, DyT ViT with its weights, input size)."""
    torch.manual_seed(0)
    reference, size = timm_family(family)
    reference = perturbed(reference)
    state = reference.state_dict()
    found, options, _ = infer_vit_config(to_vit_names(state))
    assert found == FOUND.get(family, family)
    options.update(family_options(family))  # what the converter's --model sets
    model = DyTViT(**dict(options, img_size=size, **overrides))
    model.load_state_dict(convert_for(model, state), strict=False)
    torch.manual_seed(1)  # dispatchers and adapters that keep some tokens and change others
    for name, param in model.named_parameters():
        if model.is_dyt_param(name):
            nn.init.normal_(param, std=0.3)
    return reference, model.eval(), size


def images(batch, size, seed=0):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('family', FAMILIES)
def test_complete_mode_equals_timm_forward_features(family):
    reference, model, size = dyt_twin(family, adapter=dict(bottleneck=8, scale=0.0))
    x = images(2, size)
    with torch.no_grad(), dyt_mode(model, 'complete'):
        ours = model(x).tokens
        theirs = reference.forward_features(x)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
        avg_pool = isinstance(model.fc_norm, nn.LayerNorm)  # as timm pools with fc_norm
        pooled = model.pool(ours, 'avg_featmap' if avg_pool else 'cls_token')
        torch.testing.assert_close(pooled, reference.forward_head(theirs, pre_logits=True)
                                   if family != 'deit-distilled' else theirs[:, 0],
                                   atol=1e-4, rtol=0)


@pytest.mark.parametrize('variant', ['mlp', 'attn', 'layer'])
@pytest.mark.parametrize('family', FAMILIES)
def test_sparse_equals_masked(family, variant):
    _, model, size = dyt_twin(family, variant=variant, adapter=dict(bottleneck=8))
    x = images(3, size, seed=1)
    with torch.no_grad():
        with dyt_mode(model, 'masked'):
            masked = model(x)
        with dyt_mode(model, 'sparse'):
            sparse = model(x)
    assert 0 < masked.masks.mean() < 1, 'the dispatchers should keep a mix of tokens'
    torch.testing.assert_close(sparse.masks, masked.masks)
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=1e-5)


def fvcore_flops(model, x):
    from fvcore.nn import FlopCountAnalysis
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total()


@pytest.mark.parametrize('family', FAMILIES)
def test_flops_equal_fvcore(family):
    _, model, size = dyt_twin(family, variant='attn_mlp', adapter=dict(bottleneck=8),
                              fused_attn=False)
    x = images(1, size)
    with torch.no_grad():
        with dyt_mode(model, 'complete'):
            assert ViTFlops(model).complete() == fvcore_flops(model, x)
        with dyt_mode(model, 'sparse'):
            masks = model(x).masks
            assert ViTFlops(model).from_masks(masks).tolist() == [fvcore_flops(model, x)]


def test_register_tokens_are_never_dispatched():
    _, model, size = dyt_twin('dinov2', variant='layer', adapter=None)
    # dispatchers that skip every image token: the class and register tokens still change
    for block in model.blocks:
        nn.init.constant_(block.dispatchers['layer'].gate.bias, -50.0)
    x = images(1, size)
    with torch.no_grad(), dyt_mode(model, 'sparse'):
        embedded, _ = model.embed(x)
        out = model(x)
    assert out.masks.sum() == 0
    assert not torch.allclose(out.tokens[:, :5], model.norm(embedded[:, :5]))
    torch.testing.assert_close(out.tokens[:, 5:], model.norm(embedded[:, 5:]))


def test_dinov2_position_embeddings_are_interpolated_from_the_pretraining_grid():
    """A DINOv2 checkpoint of 4 x 4 patches (as 518 px = 37 x 37) loaded at 2 x 2 (as 224
    px): the same model as timm builds when it loads the checkpoint at that size."""
    from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
    reference, _ = timm_family('dinov2')
    state = perturbed(reference).state_dict()
    small = VisionTransformer(img_size=28, patch_size=14, init_values=1e-5, reg_tokens=4,
                              no_embed_class=True, **TINY).eval()
    small.load_state_dict(checkpoint_filter_fn(state, small))
    _, options, _ = infer_vit_config(to_vit_names(state))
    assert options['img_size'] == 56 and options['patch_size'] == 14
    model = DyTViT(**dict(options, img_size=28, adapter=None, dispatch=None)).eval()
    load_pretrained(model, state)
    assert model.pos_embed.shape == (1, 2 * 2, 192)  # registers and class token have none
    x = images(2, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x).tokens, small.forward_features(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize('converted_as,configured', [('clip', 'quick_gelu'),
                                                     ('clip-quickgelu', 'gelu')])
def test_a_converted_clip_refuses_a_config_of_another_activation(tmp_path, converted_as,
                                                                 configured):
    """The weights cannot tell GELU from QuickGELU; the converter records the one it was
    told, and loading into a ViT configured with the other is an error naming both."""
    from safetensors.torch import save_file
    from test_convert import converter_main
    reference = perturbed(timm_family(converted_as)[0])
    src, dst = tmp_path / 'clip.safetensors', tmp_path / 'clip_dyt.pth'
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(src))
    model_flag = [] if converted_as == 'clip' else ['--model', converted_as]
    assert converter_main()([str(src), str(dst), '--img-size', '32', *model_flag]) == 0
    checkpoint = torch.load(dst, weights_only=True)
    meta = checkpoint['meta']
    recorded = 'gelu' if converted_as == 'clip' else 'quick_gelu'
    assert meta['vit'].get('mlp_act', 'gelu') == recorded

    def built(mlp_act):
        return DyTViT(meta['arch'], img_size=32, patch_size=meta['patch_size'], adapter=None,
                      dispatch=None, **dict(meta['vit'], mlp_act=mlp_act)).eval()

    wrong = built(configured)
    message = (rf"{dst} were converted for mlp_act='{recorded}' \({converted_as} family\), "
               rf"but this DyT ViT .* is configured with mlp_act='{configured}'")
    with pytest.raises(ValueError, match=message):
        load_pretrained(wrong, str(dst))
    with pytest.raises(ValueError, match="converted for mlp_act"):  # the checkpoint in memory
        load_pretrained(wrong, checkpoint)
    # what the check prevents: the same tensors compute something else
    wrong.load_state_dict(checkpoint['state_dict'], strict=False)
    right = built(recorded)
    load_pretrained(right, str(dst))
    x = images(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(right(x).tokens, reference.forward_features(x), atol=1e-4,
                                   rtol=0)
        assert not torch.allclose(wrong(x).tokens, right(x).tokens, atol=1e-3)
