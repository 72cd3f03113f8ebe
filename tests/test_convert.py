"""tools/convert/timm_vit_to_dyt.py on timm .pth / .safetensors and Google/JAX .npz files."""
import argparse
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from dyt_mm import DyTViT, dyt_mode, set_mode
from dyt_mm.models.dyt.pretrained import convert_for, load_pretrained
from dyt_mm.models.dyt.weight_names import jax_to_timm

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'convert', 'timm_vit_to_dyt.py')
DIMS = dict(embed_dims=64, depth=2, num_heads=4)
ARCH = 'embed_dims=64,depth=2,num_heads=4'
TINY_ARGS = ['--arch', ARCH, '--patch-size', '8', '--img-size', '32']


pytestmark = pytest.mark.usefixtures('single_thread')


def run_converter(*args):
    # the repository's own package first, even if the installed copy is older
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def random_timm_vit(**kwargs):
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4,
                              num_classes=10, **kwargs)
    # Perturb every tensor (LayerNorms and biases too), so a swapped or
    # mis-transposed weight cannot go unnoticed.
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def to_jax_layout(state, num_heads=4):
    """timm names and layouts -> the Google/JAX ViT .npz layout."""
    C = state['pos_embed'].shape[-1]
    head_dim = C // num_heads
    jax = {
        'embedding/kernel': state['patch_embed.proj.weight'].permute(2, 3, 1, 0),  # OIHW->HWIO
        'embedding/bias': state['patch_embed.proj.bias'],
        'cls': state['cls_token'],
        'Transformer/posembed_input/pos_embedding': state['pos_embed'],
        'Transformer/encoder_norm/scale': state['norm.weight'],
        'Transformer/encoder_norm/bias': state['norm.bias'],
        'head/kernel': state['head.weight'].t(),
        'head/bias': state['head.bias'],
    }
    depth = len({k.split('.')[1] for k in state if k.startswith('blocks.')})
    for i in range(depth):
        src, dst = f'blocks.{i}.', f'Transformer/encoderblock_{i}/'
        attn = dst + 'MultiHeadDotProductAttention_1/'
        jax[dst + 'LayerNorm_0/scale'] = state[src + 'norm1.weight']
        jax[dst + 'LayerNorm_0/bias'] = state[src + 'norm1.bias']
        jax[dst + 'LayerNorm_2/scale'] = state[src + 'norm2.weight']
        jax[dst + 'LayerNorm_2/bias'] = state[src + 'norm2.bias']
        weights = state[src + 'attn.qkv.weight'].chunk(3)  # each (C_out, C_in)
        biases = state[src + 'attn.qkv.bias'].chunk(3)
        for name, w, b in zip(('query', 'key', 'value'), weights, biases):
            jax[attn + f'{name}/kernel'] = w.t().reshape(C, num_heads, head_dim)
            jax[attn + f'{name}/bias'] = b.reshape(num_heads, head_dim)
        jax[attn + 'out/kernel'] = state[src + 'attn.proj.weight'].t().reshape(
            num_heads, head_dim, C)
        jax[attn + 'out/bias'] = state[src + 'attn.proj.bias']
        for j in (0, 1):
            dense = dst + f'MlpBlock_3/Dense_{j}/'
            jax[dense + 'kernel'] = state[src + f'mlp.fc{j + 1}.weight'].t()
            jax[dense + 'bias'] = state[src + f'mlp.fc{j + 1}.bias']
    return {k: v.detach().contiguous().numpy() for k, v in jax.items()}


@pytest.fixture(scope='module')
def timm_vit():
    return random_timm_vit()


@pytest.fixture(scope='module')
def sources(timm_vit, tmp_path_factory):
    root = tmp_path_factory.mktemp('sources')
    state = {k: v.detach().contiguous() for k, v in timm_vit.state_dict().items()}
    torch.save(state, root / 'vit.pth')
    save_file(state, str(root / 'vit.safetensors'))
    np.savez(root / 'vit.npz', **to_jax_layout(state))
    return root


def load_converted(path, img_size=32, **vit_kwargs):
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    model = DyTViT(DIMS, img_size=img_size, patch_size=8,
                   adapter=dict(bottleneck=8, num_experts=2), **vit_kwargs)
    missing, unexpected = model.load_state_dict(checkpoint['state_dict'], strict=False)
    assert not unexpected
    assert all(model.is_dyt_param(k) for k in missing)
    set_mode(model, 'complete')
    return checkpoint, model.eval()


@pytest.mark.parametrize('fmt', ['pth', 'safetensors', 'npz'])
def test_converted_model_matches_timm_forward_features(fmt, timm_vit, sources, tmp_path):
    dst = tmp_path / 'dyt.pth'
    result = run_converter(sources / f'vit.{fmt}', dst, *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    found, converted = result.stdout.strip().splitlines()
    assert found.startswith(f'found in vit.{fmt}: family vit;') and 'patch 8' in found
    assert converted.startswith('converted')

    checkpoint, model = load_converted(dst)
    assert checkpoint['meta'] == dict(source=f'vit.{fmt}', family='vit', arch=DIMS, img_size=32,
                                      patch_size=8, vit={})
    assert not any(k.startswith('head.') for k in checkpoint['state_dict'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x).tokens, timm_vit.forward_features(x),
                                   atol=1e-5, rtol=0)


def test_wrong_arch_fails_naming_the_missing_and_mis_shaped_keys(sources, tmp_path):
    dst = tmp_path / 'dyt.pth'
    result = run_converter(sources / 'vit.pth', dst, '--arch', 'embed_dims=96,depth=3,num_heads=4',
                           '--patch-size', '8', '--img-size', '32')
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert 'missing' in result.stderr and 'blocks.2.mlp.fc1.weight' in result.stderr
    assert 'mis-shaped' in result.stderr and 'blocks.0.attn.qkv.weight' in result.stderr
    assert not dst.exists()


def test_existing_destination_is_kept_without_force(sources, tmp_path):
    dst = tmp_path / 'dyt.pth'
    dst.write_bytes(b'keep me')
    result = run_converter(sources / 'vit.pth', dst, *TINY_ARGS)
    assert result.returncode != 0
    assert '--force' in result.stderr and 'Traceback' not in result.stderr
    assert dst.read_bytes() == b'keep me'


# In-process runs of the tool's main() for the cheaper cases.
def converter_main():
    spec = importlib.util.spec_from_file_location('timm_vit_to_dyt', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_vit_without_class_token_converts(tmp_path):
    timm_vit = random_timm_vit(class_token=False, global_pool='avg', fc_norm=False)
    src, dst = tmp_path / 'vit-nocls.pth', tmp_path / 'dyt.pth'
    torch.save(timm_vit.state_dict(), src)
    assert converter_main()([str(src), str(dst), *TINY_ARGS, '--no-class-token']) == 0

    _, model = load_converted(dst, class_token=False)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x).tokens, timm_vit.forward_features(x),
                                   atol=1e-5, rtol=0)


def test_unknown_arch_preset_is_a_usage_error(sources, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        converter_main()([str(sources / 'vit.pth'), str(tmp_path / 'x.pth'), '--arch', 'gigantic'])
    assert exit_info.value.code != 0
    assert "'gigantic'" in capsys.readouterr().err


def test_pickled_objects_beside_the_weights_are_never_rebuilt(timm_vit, tmp_path):
    """timm/DeiT files may carry e.g. an argparse.Namespace of training args: the
    weights are converted, the object is neither imported nor called."""
    src, dst = tmp_path / 'pickled.pth', tmp_path / 'dyt.pth'
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    torch.save({'state_dict': timm_vit.state_dict(), 'args': argparse.Namespace(a=1),
                'payload': Payload()}, src)
    assert converter_main()([str(src), str(dst), *TINY_ARGS]) == 0
    assert not marker.exists()
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert torch.equal(converted['blocks.0.attn.qkv.weight'],
                       timm_vit.state_dict()['blocks.0.attn.qkv.weight'])


def test_force_replaces_an_existing_destination(sources, tmp_path):
    dst = tmp_path / 'dyt.pth'
    dst.write_bytes(b'old')
    assert converter_main()([str(sources / 'vit.pth'), str(dst), *TINY_ARGS, '--force']) == 0
    assert 'state_dict' in torch.load(dst, weights_only=True)
    assert [p.name for p in tmp_path.iterdir()] == ['dyt.pth']  # no temporary file left


def test_missing_source_fails_naming_the_path(tmp_path, capsys):
    src, dst = tmp_path / 'no-such-vit.pth', tmp_path / 'dyt.pth'
    assert converter_main()([str(src), str(dst), *TINY_ARGS]) != 0
    assert str(src) in capsys.readouterr().err
    assert not dst.exists()


def test_position_embeddings_are_resized_to_the_target_size(timm_vit, sources, tmp_path):
    dst = tmp_path / 'dyt48.pth'
    args = [str(sources / 'vit.pth'), str(dst), '--arch', ARCH, '--patch-size', '8']
    assert converter_main()(args + ['--img-size', '48']) == 0

    checkpoint, model = load_converted(dst, img_size=48)
    pos = checkpoint['state_dict']['pos_embed']
    assert pos.shape == (1, 1 + 6 * 6, 64)
    source = timm_vit.pos_embed.detach()
    torch.testing.assert_close(pos[:, :1], source[:, :1])  # the class token's entry is kept
    grid = source[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(6, 6), mode='bicubic', align_corners=False)
    torch.testing.assert_close(pos[:, 1:], grid.permute(0, 2, 3, 1).reshape(1, 36, 64))
    assert checkpoint['meta']['img_size'] == 48
    with torch.no_grad():
        out = model(torch.randn(1, 3, 48, 48))
    assert out.tokens.shape == (1, 37, 64) and torch.isfinite(out.tokens).all()


def test_whole_model_checkpoints_keep_only_the_backbone(timm_vit):
    model = DyTViT(DIMS, img_size=32, patch_size=8)
    wrapped = {f'module.backbone.vit.{k}': v for k, v in timm_vit.state_dict().items()}
    wrapped['module.head.fc.weight'] = torch.zeros(10, 64)
    wrapped['module.data_preprocessor.mean'] = torch.zeros(3)
    state = convert_for(model, wrapped)
    assert set(state) == {k for k in timm_vit.state_dict() if not k.startswith('head.')}


def test_incomplete_jax_checkpoint_names_the_missing_array(timm_vit):
    jax = to_jax_layout(timm_vit.state_dict())
    del jax['Transformer/encoderblock_1/LayerNorm_2/scale']
    with pytest.raises(ValueError,
                       match="'Transformer/encoderblock_1/LayerNorm_2/scale' is missing"):
        jax_to_timm({k: torch.as_tensor(np.asarray(v)) for k, v in jax.items()})


# ------------------------------------------------------------------ reading the architecture
@pytest.mark.parametrize('width,heads,patch', [(384, 6, 8), (1024, 16, 16)],
                         ids=['vit-s', 'vit-l'])
def test_standard_widths_convert_without_flags(tmp_path, capsys, width, heads, patch):
    """Widths 384 and 1024 are timm's ViT-S and ViT-L: 6 and 16 heads; depth, patch and grid
    come from the tensors (two blocks keep the test fast)."""
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    timm_vit = VisionTransformer(img_size=32, patch_size=patch, embed_dim=width, depth=2,
                                 num_heads=heads, num_classes=10).eval()
    src, dst = tmp_path / 'vit.pth', tmp_path / 'dyt.pth'
    torch.save(timm_vit.state_dict(), src)
    assert converter_main()([str(src), str(dst), '--img-size', '32']) == 0
    out = capsys.readouterr().out
    assert (f'found in vit.pth: family vit; arch embed_dims {width}, depth 2, num_heads '
            f'{heads}, mlp_ratio 4; patch {patch}; prefix: class token; pre-trained at 32 px'
            ) in out

    checkpoint = torch.load(dst, weights_only=True)
    meta = checkpoint['meta']
    assert meta['arch'] == dict(embed_dims=width, depth=2, num_heads=heads, mlp_ratio=4.0)
    model = DyTViT(meta['arch'], img_size=32, patch_size=meta['patch_size'], **meta['vit'])
    load_pretrained(model, checkpoint['state_dict'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), dyt_mode(model.eval(), 'complete'):
        torch.testing.assert_close(model(x).tokens, timm_vit.forward_features(x),
                                   atol=1e-4, rtol=0)


def test_eva02_converts_to_options_that_compute_it(tmp_path, capsys):
    from timm.models.eva import Eva
    torch.manual_seed(0)
    eva = Eva(img_size=32, patch_size=8, embed_dim=192, depth=2, num_heads=3, mlp_ratio=4 * 2 / 3,
              qkv_fused=False, swiglu_mlp=True, scale_mlp=True, scale_attn_inner=True,
              use_rot_pos_emb=True, ref_feat_shape=(16, 16), global_pool='token').eval()
    with torch.no_grad():
        for param in eva.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    src, dst = tmp_path / 'eva02.safetensors', tmp_path / 'dyt.pth'
    save_file({k: v.contiguous() for k, v in eva.state_dict().items()}, str(src))
    assert converter_main()([str(src), str(dst), '--img-size', '32']) == 0
    assert 'family eva02' in capsys.readouterr().out
    checkpoint = torch.load(dst, weights_only=True)
    meta = checkpoint['meta']
    assert meta['vit'] == dict(mlp_act='swiglu', rope_ref_grid=(16, 16), inner_norms=('attn', 'mlp'))
    model = DyTViT(meta['arch'], img_size=32, patch_size=8, adapter=None, **meta['vit'])
    load_pretrained(model, checkpoint['state_dict'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), dyt_mode(model.eval(), 'complete'):
        torch.testing.assert_close(model(x).tokens, eva.forward_features(x), atol=1e-4, rtol=0)


def test_unsupported_family_is_an_error_naming_what_was_found(tmp_path, capsys):
    from timm.models.beit import Beit
    beit = Beit(img_size=32, patch_size=8, embed_dim=192, depth=1, num_heads=3,
                use_rel_pos_bias=True)
    src, dst = tmp_path / 'beit.pth', tmp_path / 'dyt.pth'
    torch.save(beit.state_dict(), src)
    assert converter_main()([str(src), str(dst)]) != 0
    err = capsys.readouterr().err
    assert 'relative position bias' in err and 'relative_position_bias_table' in err
    assert 'supported families: vit, deit-distilled, mae, clip' in err
    assert not dst.exists()


def test_a_width_outside_timm_s_table_asks_for_the_heads(sources, tmp_path, capsys):
    assert converter_main()([str(sources / 'vit.pth'), str(tmp_path / 'dyt.pth')]) != 0
    assert 'cannot tell the number of heads of width 64; pass --arch' in capsys.readouterr().err
