"""DyT on the Swin Transformer: the three modes, timm equivalence, FLOPs, configs, tools."""
import glob
import importlib.util
import json
import os.path as osp
import re
import warnings

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from helpers import REPO, run_tool, tiny_digits_cfg
from safetensors.torch import save_file
from test_convert import converter_main

from dyt_mm import calibrate_budget, dyt_mode, set_mode
from dyt_mm.analysis import (BackboneCall, build_model, model_flops, random_backbone_inputs,
                             run_on_inputs)
from dyt_mm.analysis.flops import backbone_flops
from dyt_mm.models.dyt import DyTSwin, TokenDispatcher, load_pretrained, threshold_offsets
from dyt_mm.utils.checkpoint import load_tensors

pytestmark = pytest.mark.usefixtures('single_thread')

TINY = dict(embed_dims=32, depths=(2, 2), num_heads=(2, 4))
TIMM_TINY = dict(img_size=32, patch_size=4, window_size=4, embed_dim=32, depths=(2, 2),
                 num_heads=(2, 4))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs/image/dyt-r*_swin-b-in22k_*.py')))


def random_timm_swin(**overrides):
    """timm's Swin at a tiny size, every tensor perturbed (norms and biases too), so a
    swapped or mis-shaped weight cannot go unnoticed."""
    from timm.models.swin_transformer import SwinTransformer
    torch.manual_seed(0)
    model = SwinTransformer(**dict(TIMM_TINY, num_classes=10, **overrides)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model


def tiny_swin(**overrides) -> DyTSwin:
    """A tiny DyT Swin whose dispatchers keep a clear mix of tokens."""
    torch.manual_seed(0)
    model = DyTSwin(TINY, **dict(dict(img_size=32, window_size=4), **overrides))
    for module in model.modules():
        if isinstance(module, TokenDispatcher):
            torch.nn.init.normal_(module.gate.weight, std=0.5)
    for name, param in model.named_parameters():
        if 'adapters' in name and name.endswith('weight'):  # up-projections start at zero
            torch.nn.init.normal_(param, std=0.2)
    return model.eval()


def as_microsoft_layout(state):
    """timm's names -> Microsoft's original Swin checkpoints: patch merging at the end of
    the stage before, plus the buffers they hold."""
    out = {}
    for name, tensor in state.items():
        name = re.sub(r'^layers\.(\d+)\.downsample',
                      lambda m: f'layers.{int(m.group(1)) - 1}.downsample', name)
        out[name.replace('head.fc.', 'head.')] = tensor
        if name.endswith('attn.relative_position_bias_table'):
            out[name.replace('bias_table', 'index')] = torch.zeros(16, 16, dtype=torch.long)
    return out


# ----------------------------------------------------------------- modes
def test_sparse_equals_masked_in_eval():
    model = tiny_swin()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), dyt_mode(model, 'masked'):
        masked = model(x)
    with torch.no_grad(), dyt_mode(model, 'sparse'):
        sparse = model(x)
    rates = masked.masks.mean(dim=(0, 2))
    assert ((rates > 0.05) & (rates < 0.95)).all(), 'every site keeps a real mix of tokens'
    assert torch.equal(masked.masks, sparse.masks)
    torch.testing.assert_close(sparse.tokens, masked.tokens, rtol=0, atol=1e-6)


def test_masks_are_each_stage_s_decisions_on_the_finest_grid():
    model = tiny_swin()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.masks.shape == (2, 4, 8 * 8)
    second_stage = out.masks[:, 2].reshape(2, 4, 2, 4, 2)  # 4 x 4 tokens of 2 x 2 finest ones
    assert (second_stage == second_stage[:, :, :1, :, :1]).all()


def test_training_gradients_reach_dispatchers_and_adapters_only():
    model = tiny_swin().train()
    out = model(torch.randn(2, 3, 32, 32))
    (out.tokens.sum() + out.masks.mean()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(model.is_dyt_param(n) for n in grads)
    assert any('dispatchers' in n for n in grads) and any('adapters' in n for n in grads)


# ----------------------------------------------------------------- timm weights
@pytest.mark.parametrize('layout', ['timm.safetensors', 'microsoft.pth'])
def test_converted_timm_swin_matches_forward_features(layout, tmp_path, capsys):
    timm_swin = random_timm_swin()
    state = {k: v.contiguous() for k, v in timm_swin.state_dict().items()}
    src, dst = tmp_path / f'swin-{layout}', tmp_path / 'swin_dyt.pth'
    if layout.endswith('safetensors'):
        save_file(state, str(src))
    else:
        torch.save(as_microsoft_layout(state), src)
    assert converter_main()([str(src), str(dst), '--img-size', '32']) == 0
    assert 'family swin' in capsys.readouterr().out
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['arch'] == TINY and checkpoint['meta']['vit']['window_size'] == 4

    model = DyTSwin(checkpoint['meta']['arch'], img_size=32, window_size=4)
    load_pretrained(model, str(dst))
    set_mode(model, 'complete')
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = timm_swin.forward_features(x).flatten(1, 2)
        torch.testing.assert_close(model.eval()(x).tokens, expected, rtol=0, atol=1e-4)


def test_swin_matches_timm_where_windows_pad_the_grid():
    """48 px: stage 2's 6 x 6 grid in shifted windows of 4 x 4 is padded to 8 x 8; timm's
    Swin attends to the zero padding, and so must the converted model."""
    timm_swin = random_timm_swin(img_size=48)
    model = DyTSwin(TINY, img_size=48, window_size=4)
    load_pretrained(model, timm_swin.state_dict())
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad(), dyt_mode(model, 'complete'):
        expected = timm_swin.forward_features(x).flatten(1, 2)
        torch.testing.assert_close(model.eval()(x).tokens, expected, rtol=0, atol=1e-4)


def test_swin_weights_that_do_not_fit_name_the_keys(tmp_path):
    src = tmp_path / 'swin.pth'
    torch.save(random_timm_swin().state_dict(), src)
    wider = DyTSwin(dict(TINY, embed_dims=64), img_size=32, window_size=4)
    with pytest.raises(ValueError, match=r'do not fit this DyT Swin.*mis-shaped.*patch_embed'):
        load_pretrained(wider, str(src))
    deeper = DyTSwin(dict(TINY, depths=(2, 3)), img_size=32, window_size=4)
    with pytest.raises(ValueError, match=r'missing key\(s\): layers\.1\.blocks\.2\.'):
        load_pretrained(deeper, str(src))


def test_converter_refuses_vit_options_for_a_swin(tmp_path, capsys):
    src = tmp_path / 'swin.pth'
    torch.save(random_timm_swin().state_dict(), src)
    assert converter_main()([str(src), str(tmp_path / 'out.pth'), '--patch-size', '8']) == 1
    assert '--patch-size do(es) not apply' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()


# ----------------------------------------------------------------- FLOPs
class Call(torch.nn.Module):
    """``fn(x)`` as a module that fvcore can trace."""

    def __init__(self, module, fn):
        super().__init__()
        self.module, self.fn = module, fn

    def forward(self, x):
        return self.fn(x)


def fvcore_flops(model, x, mode, fn=None):
    with dyt_mode(model, mode), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        analysis = FlopCountAnalysis(Call(model, fn or model), (x, ))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total()


@pytest.mark.parametrize('img_size, window', [(32, 4), (48, 4)])
def test_flops_equal_fvcore_dense_on_timm_complete_and_sparse_on_ours(img_size, window):
    """48 px: a 12 x 12 grid padded to windows of 8 x 8 = 16 tokens, then 6 x 6 in one
    (clamped) window of 6 x 6."""
    timm_swin = Call(random_timm_swin(img_size=img_size, window_size=window), None)
    timm_swin.fn = timm_swin.module.forward_features
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        dense = FlopCountAnalysis(timm_swin, torch.randn(1, 3, img_size, img_size))
        dense.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    model = tiny_swin(img_size=img_size, window_size=window, fused_attn=False)
    flops = model.flops_counter()
    assert flops.dense() == dense.total()
    x = torch.randn(3, 3, img_size, img_size, generator=torch.Generator().manual_seed(2))
    assert flops.complete() == fvcore_flops(model, x[:1], 'complete')
    with torch.no_grad(), dyt_mode(model, 'sparse'):
        per_sample = flops.from_masks(model(x).masks)
    assert len(set(per_sample.tolist())) > 1, 'inputs with different masks cost differently'
    for i in range(3):
        assert per_sample[i].item() == fvcore_flops(model, x[i:i + 1], 'sparse')


def test_swin_b_dense_is_the_papers_15_40_gflops(monkeypatch):
    # only the shapes matter: skip the (slow) random initialisation of 87 M weights
    monkeypatch.setattr(DyTSwin, '_init_base_weights', lambda self: None)
    for layer in (torch.nn.Linear, torch.nn.Conv2d):
        monkeypatch.setattr(layer, 'reset_parameters', lambda self: None)
    assert DyTSwin('base').flops_counter().dense() == pytest.approx(15.40e9, rel=0.005)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown arch 'huge'; allowed: tiny, small, base, large"),
    (dict(arch=dict(embed_dims=32, depths=(2, 2), num_heads=(2, ))),
     'one depth and one head count per stage'),
    (dict(arch=TINY, img_size=36), 'input size 36x36 does not fit this Swin: it needs '
     'multiples of 8'),
    (dict(arch=TINY, variant='attn'), "unknown Swin dispatch variant 'attn'; allowed: mlp"),
    (dict(arch=TINY, adapter=dict(type='LoRA', rank=4)),
     r"parallel adapters \(Adapter, MoEAdapter\) only, got one attached at \['linears'\]"),
])
def test_bad_swin_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DyTSwin(**dict(dict(window_size=4, img_size=32), **kwargs))


# ----------------------------------------------------------- calibration
def probed(model, data):
    """The keep rates and backbone GFLOPs that DyTHook, get_flops.py and budget_sweep.py
    report, from the masks of the model's forward on ``data``."""
    with torch.no_grad():
        calls = [BackboneCall(None, len(x), out.masks, model.site_tokens(out.masks.shape[-1]),
                              grid=out.grid) for x in data for out in [model(x)]]
    rates = torch.cat([call.keep_rates for call in calls]).mean(dim=0)
    gflops = torch.cat([backbone_flops(model, call) for call in calls]).mean().item() / 1e9
    return rates, gflops


def random_images(count=3, batch=8):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, 32, 32, generator=generator) for _ in range(count)]


@pytest.mark.parametrize('per_layer', [False, True], ids=['global', 'per-layer'])
def test_calibrated_keep_rate_is_the_one_the_tools_report(per_layer):
    model, data = tiny_swin(), random_images()
    result = calibrate_budget(model, data, 0.5, per_layer=per_layer)
    rates, gflops = probed(model, data)
    assert result['converged']
    # each stage weighs alike: its 16 (not 64) tokens per image count for the whole grid
    assert result['keep_rate'] == pytest.approx(rates.mean().item(), abs=1e-12)
    assert result['keep_rate_per_site'] == pytest.approx(rates.tolist(), abs=1e-12)
    assert result['gflops'] == pytest.approx(gflops, rel=1e-12)
    assert result['keep_rate'] == pytest.approx(0.5, abs=0.002)
    offsets = threshold_offsets(model)
    if per_layer:
        assert rates.tolist() == pytest.approx([0.5] * 4, abs=0.002)
    else:
        assert (offsets == offsets[0]).all()


def test_gflops_target_is_met_as_get_flops_counts_it():
    model, data = tiny_swin(), random_images()
    counter = model.flops_counter()
    floor = counter.per_sample(torch.zeros(1, 4)).item() / 1e9
    ceiling = counter.per_sample(torch.full((1, 4), 64)).item() / 1e9
    target = (floor + ceiling) / 2
    result = calibrate_budget(model, data, dict(gflops=target))
    _, gflops = probed(model, data)
    assert result['converged'] and result['gflops'] == pytest.approx(gflops, rel=1e-12)
    assert gflops == pytest.approx(target, abs=0.002 * (ceiling - floor))
    with pytest.raises(ValueError, match=rf'allowed \({floor:.6g}, {ceiling:.6g}\]'):
        calibrate_budget(model, data, dict(gflops=2 * ceiling))


def test_bad_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match='input size 36x32 does not fit'):
        tiny_swin()(torch.randn(1, 3, 36, 32))


# ----------------------------------------------------------------- configs
@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_swin_configs_say_what_their_names_say(path):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    rate = float(re.search(r'dyt-r([0-9.]+)_', osp.basename(path)).group(1))
    classes = {'cifar100': 100, 'svhn': 10, 'food101': 101}[path.rsplit('_', 1)[1][:-3]]
    assert cfg.model.dyt_loss.target_rate == rate and cfg.model.head.num_classes == classes
    assert cfg.model.backbone.type == 'DyTSwinTransformer' and cfg.model.head.in_channels == 1024
    assert 'patch_size' in cfg.model.backbone and 'num_reg_tokens' not in cfg.model.backbone


def test_swin_b_config_builds_with_the_formula_trainable_parameters(monkeypatch):
    assert len(CONFIGS) == 15  # 5 rates x CIFAR-100, SVHN, Food-101
    from mmengine.config import Config
    monkeypatch.setattr(DyTSwin, '_init_base_weights', lambda self: None)
    for layer in (torch.nn.Linear, torch.nn.Conv2d):
        monkeypatch.setattr(layer, 'reset_parameters', lambda self: None)
    cfg = Config.fromfile(CONFIGS[0])
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    swin = model.backbone.vit
    trainable = sum(p.numel() for p in swin.parameters() if p.requires_grad)
    # per block of width C: adapter 2 x 64 C + 64 + C, dispatcher C + 1 (1.57 M; paper: 1.55 M)
    widths = [128] * 2 + [256] * 2 + [512] * 18 + [1024] * 2
    assert trainable == sum(130 * C + 65 for C in widths) == 1_565_720
    frozen = sum(p.numel() for p in swin.parameters() if not p.requires_grad)
    assert frozen == 86_743_224  # timm's Swin-B without its head (paper, full tuning: 86.74 M)


# ----------------------------------------------------------------- the tools
@pytest.fixture(scope='module')
def swin_run(digits_root, tmp_path_factory):
    """A converted tiny timm Swin trained 4 iterations through tools/train.py."""
    tmp = tmp_path_factory.mktemp('swin')
    src, converted = tmp / 'swin.safetensors', tmp / 'swin_dyt.pth'
    save_file({k: v.contiguous() for k, v in random_timm_swin().state_dict().items()}, str(src))
    assert converter_main()([str(src), str(converted), '--img-size', '32']) == 0
    meta = torch.load(converted, weights_only=True)['meta']
    cfg = tiny_digits_cfg(digits_root, str(tmp / 'work'), log_level='INFO',
                          **{'model.head.in_channels': 64})
    # what the converter says the weights need, as a user puts it in the config
    cfg.model.backbone = dict(type='DyTSwinTransformer', arch=meta['arch'], img_size=32,
                              patch_size=meta['patch_size'], **meta['vit'],
                              adapter=dict(bottleneck=8),
                              init_cfg=dict(type='Pretrained', checkpoint=str(converted)))
    cfg_path = str(tmp / 'swin_digits.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cfg_path, str(tmp / 'work' / 'iter_4.pth'), proc.stdout + proc.stderr


def test_swin_trains_through_tools_train(swin_run):
    _, ckpt, log = swin_run
    assert 'loss_distill' in log and 'loss_rate' in log and 'accuracy/top1' in log
    assert 'keep_rate_l3' in log and 'gflops' in log
    trained = load_tensors(ckpt)['state_dict']
    # adapter-only checkpoint (the digits config): the base stayed frozen and is not saved
    assert 'backbone.vit.layers.1.blocks.1.dispatchers.mlp.gate.weight' in trained
    assert not any('attn' in k or 'mlp.fc' in k for k in trained)


def tool_main(path):
    """The ``main(argv)`` of a repository tool, run in this process (imports are paid once)."""
    spec = importlib.util.spec_from_file_location(osp.basename(path)[:-3], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_swin_through_get_flops_benchmark_and_visualize(swin_run, digits_root, tmp_path,
                                                        capsys):
    cfg_path, ckpt, _ = swin_run
    tool_main('tools/analysis/get_flops.py')([cfg_path, '--checkpoint', ckpt,
                                              '--num-samples', '4'])
    out = capsys.readouterr().out
    assert 'DyT per input: mean' in out and '64 image + 0 prefix tokens' in out

    tool_main('tools/analysis/benchmark.py')([
        cfg_path, '--checkpoint', ckpt, '--batch-size', '4', '--num-iters', '1', '--warmup', '0',
        '--calibrate-rate', '0.5', '--threads', '1'])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['calibrated_keep_rate'] == report['keep_rate'] == 0.5
    assert report['efficiency'] == pytest.approx(report['speedup'] / report['ceiling'])

    image = sorted(glob.glob(osp.join(digits_root, 'target/val/3/*')))[0]
    picture = str(tmp_path / 'dispatch.png')
    tool_main('tools/analysis/visualize_dispatch.py')([cfg_path, ckpt, image, '--out', picture])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(report['keep_rate_per_site']) == 4 and osp.getsize(picture) > 0


def test_compare_methods_runs_on_swins(digits_root, tmp_path, capsys):
    """DyT against AdaptFormer on the tiny Swin: every model's adapters are merged first
    (a Swin has none that merge), then both run on the first config's test data."""
    paths = []
    for name, dispatch in (('dyt', {}), ('adaptformer', dict(dispatch=None))):
        cfg = tiny_digits_cfg(digits_root, str(tmp_path / name), **{'model.head.in_channels': 64})
        cfg.model.backbone = dict(type='DyTSwinTransformer', arch=TINY, img_size=32,
                                  window_size=4, adapter=dict(bottleneck=8), **dispatch)
        if dispatch:  # no dispatchers: no DyT loss terms
            cfg.model.dyt_loss = dict(rate_weight=0, complete_weight=0, distill_weight=0)
        paths.append(str(tmp_path / f'{name}.py'))
        cfg.dump(paths[-1])
    tool_main('tools/analysis/compare_methods.py')([
        *paths, '--names', 'dyt', 'adaptformer', '--batch-size', '2', '--num-iters', '1',
        '--warmup', '0', '--threads', '1'])
    out = capsys.readouterr().out
    dyt, adaptformer = json.loads(out.strip().splitlines()[-1])['rows']
    assert dyt['lora_merged'] == adaptformer['lora_merged'] == 0
    assert dyt['test_mode'] == 'sparse' and 0 < dyt['keep_rate'] < adaptformer['keep_rate'] == 1
    assert dyt['gflops'] < adaptformer['gflops']
    assert dyt['trainable_params_m'] > adaptformer['trainable_params_m']  # + the gates
    assert dyt['train_step_seconds'] > 0 and adaptformer['train_step_seconds'] > 0


def test_budget_sweep_calibrates_a_swin(swin_run, tmp_path, capsys):
    cfg_path, ckpt, _ = swin_run
    tool_main('tools/analysis/budget_sweep.py')([
        cfg_path, ckpt, '--targets', '0.4', '--unit', 'keep_rate', '--per-layer',
        '--calibration-samples', '32', '--batch-size', '4', '--num-iters', '1', '--warmup', '0',
        '--threads', '1', '--out', str(tmp_path / 'curve.png'),
        '--cfg-options', 'test_dataloader.dataset.indices=16'])
    uncalibrated, point = json.loads(capsys.readouterr().out.strip().splitlines()[-1])['points']
    assert point['calibration_keep_rate'] == pytest.approx(0.4, abs=0.002)
    assert len(point['offsets']) == 4 and point['gflops'] < uncalibrated['gflops']


def test_whole_model_flops_follow_the_masks(swin_run):
    from mmengine.config import Config
    model = build_model(Config.fromfile(swin_run[0]), swin_run[1])
    for block in model.backbone.vit.blocks:
        block.attn.fused_attn = False
    x = random_backbone_inputs(model, 2, seed=1)
    per_input = model_flops(model, Config.fromfile(swin_run[0])).per_input(
        run_on_inputs(model, x, 'sparse').calls[0])
    for i in range(2):
        assert per_input[i].item() == fvcore_flops(model, x[i:i + 1], 'sparse',
                                                   lambda t: model(t, mode='tensor'))
