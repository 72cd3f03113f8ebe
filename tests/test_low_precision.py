"""Low precision: int8 base linear layers (ONNX Runtime's dynamic quantisation and its eager
reference) and bfloat16, checked against float32 and through the Runner."""
import glob
import importlib.util
import json
import os.path as osp

import pytest
import torch
from helpers import REPO, TINY_VIT, run_tool, save_random_base, tiny_digits_cfg

from dyt_mm import DyTViT, dyt_mode
from dyt_mm.analysis import build_model
from dyt_mm.deploy import (Int8Linear, OnnxRunner, TensorForward, base_linear_names,
                           export_model, in_precision, load_exported, mean_abs_diff,
                           quantize_onnx)
from dyt_mm.deploy.evaluate import decision_flips, evaluate_precision, metric_table
from dyt_mm.models.dyt import TokenDispatcher

pytestmark = pytest.mark.usefixtures('single_thread')


def busy_vit(seed=0, **options):
    """A tiny ViT whose random gates keep clearly different tokens per input."""
    torch.manual_seed(seed)
    vit = DyTViT(**dict(TINY_VIT, arch=dict(embed_dims=64, depth=3, num_heads=2)),
                 **options).eval()
    for module in vit.modules():
        if isinstance(module, TokenDispatcher):
            torch.nn.init.normal_(module.gate.weight, std=0.5)
    return vit


def images(batch, seed):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def run(forward, x, mode='sparse'):
    with dyt_mode(forward, mode), torch.no_grad():
        return list(forward(x))


@pytest.fixture(scope='module')
def int8_file(tmp_path_factory):
    """A tiny ViT exported in sparse mode (any batch size) and its int8 file."""
    vit = busy_vit()
    folder = tmp_path_factory.mktemp('int8')
    traced, quantized = str(folder / 'vit.onnx'), str(folder / 'vit_int8.onnx')
    export_model(TensorForward(vit), images(4, seed=0), traced, dynamic_batch=True)
    return vit, traced, quantized, quantize_onnx(traced, quantized, vit)


# ------------------------------------------------------------------ int8
def test_int8_linear_is_onnx_runtimes_dynamic_quantisation_exactly(tmp_path):
    """One linear layer: ONNX Runtime's int8 file and Int8Linear agree to float rounding on
    inputs of any range and row count (the quantised values themselves are equal)."""
    import onnx
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 80).eval()
    path, quantized = str(tmp_path / 'linear.onnx'), str(tmp_path / 'linear_int8.onnx')
    torch.onnx.export(linear, (torch.randn(6, 48), ), dynamo=True, verbose=False,
                      dynamic_shapes=({0: torch.export.Dim('rows', min=1)}, )).save(path)
    holder = DyTViT(**TINY_VIT)  # quantize_onnx finds the base's layers by value
    holder.blocks[0].mlp.fc1 = linear
    assert quantize_onnx(path, quantized, holder) == 1
    assert [n.op_type for n in onnx.load(quantized).graph.node].count('MatMulInteger') == 1
    runner, reference = OnnxRunner(quantized), Int8Linear(linear)
    for seed, rows in enumerate((1, 7, 33)):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(rows, 48, generator=generator) * (seed + 0.5) + seed
        with torch.no_grad():
            expected, float32 = reference(x), linear(x)
        assert (runner(x)[0] - expected).abs().max() <= 1e-5
        assert (expected - float32).abs().max() > 1e-3  # it is quantised


def test_int8_file_quantises_the_base_only_and_matches_its_eager_reference(int8_file):
    """12 base layers (qkv, proj, fc1, fc2 x 3 blocks) become int8; gates and adapters stay
    float32. Against the eager reference the file agrees to 1e-5 on most batches; where an
    activation lies within float rounding of a quantisation step (the two runtimes' float32
    LayerNorms differ by ~1e-7) it rounds the other way, and outputs move by that one
    step's effect, still less than int8's own error against float32."""
    import onnx
    vit, _, quantized, count = int8_file
    assert count == len(base_linear_names(vit)) == 12
    graph = onnx.load(quantized).graph
    assert [n.op_type for n in graph.node].count('MatMulInteger') == 12
    float_weights = {tuple(init.dims) for init in graph.initializer if init.data_type == 1}
    assert (1, 64) in float_weights or (64, 1) in float_weights  # the gates
    reference, forward = in_precision(TensorForward(vit), 'int8'), TensorForward(vit)
    assert isinstance(reference.model.blocks[0].mlp.fc1, Int8Linear)
    assert type(reference.model.blocks[0].dispatchers['mlp'].gate) is torch.nn.Linear
    exported = load_exported(quantized)
    exact = 0
    for seed in range(6):
        x = images(5, seed=10 + seed)
        outputs, expected, float32 = exported(x), run(reference, x), run(forward, x)
        exact += max((a - b).abs().max().item() for a, b in zip(outputs, expected)) <= 1e-5
        assert mean_abs_diff(outputs, expected) < mean_abs_diff(expected, float32)
    assert exact >= 4


def test_int8_keep_decisions_stay_close_to_float32(int8_file):
    """The gates read float32 tokens: only the noise int8 adds upstream moves a decision.
    On 64 images of this random model, few decisions flip and the keep rate holds."""
    vit = int8_file[0]
    reference = in_precision(vit, 'int8')
    x = images(64, seed=5)
    with dyt_mode(vit, 'sparse'), dyt_mode(reference, 'sparse'), torch.no_grad():
        float32, int8 = vit(x).masks, reference(x).masks
    flips = decision_flips(int8, float32)
    assert 0 < float32.mean() < 1
    assert flips['flipped_decisions'] < 0.03
    assert abs(int8.mean() - float32.mean()) < 0.01
    assert flips['flipped_decisions'] == pytest.approx(flips['kept_to_skipped'] +
                                                       flips['skipped_to_kept'])


def test_decision_flips_counts_each_changed_decision():
    reference = torch.zeros(4, 2, 5)
    masks = reference.clone()
    masks[0, 1, 3] = 1  # skipped -> kept
    masks[2, 0, 0] = 1
    reference[3, 1, 4] = 1  # kept -> skipped
    flips = decision_flips(masks, reference)
    assert flips == dict(flipped_decisions=3 / 40, samples_with_a_flip=3 / 4,
                         kept_to_skipped=1 / 40, skipped_to_kept=2 / 40)
    with pytest.raises(ValueError, match=r'shape \(4, 2, 4\) cannot be compared .* '
                                         r'\(4, 2, 5\): not the same test data'):
        decision_flips(masks[..., :4], reference)


def test_a_file_without_the_base_layers_cannot_be_quantised(int8_file, tmp_path):
    """Another network's weights: none of its base layers is in the file."""
    _, traced, _, _ = int8_file
    out = tmp_path / 'other.onnx'
    with pytest.raises(ValueError, match=r'vit.onnx holds none of the linear layers of DyT ViT'
                                         r'.* nothing to quantise to int8'):
        quantize_onnx(traced, str(out), busy_vit(seed=1))
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown precision 'int4'; allowed: fp32, bf16, int8"):
        in_precision(busy_vit(), 'int4')


# ------------------------------------------------------------------ bfloat16
def test_bfloat16_network_takes_and_gives_float32_and_keeps_most_decisions():
    vit = busy_vit()
    bf16 = in_precision(vit, 'bf16')
    assert vit.blocks[0].mlp.fc1.weight.dtype == torch.float32  # a copy
    assert bf16.blocks[0].mlp.fc1.weight.dtype == torch.bfloat16
    x = images(16, seed=2)
    with dyt_mode(vit, 'sparse'), dyt_mode(bf16, 'sparse'), torch.no_grad():
        expected, out = vit(x), bf16(x)
    assert out.tokens.dtype == out.masks.dtype == torch.float32
    assert all(h.dtype == torch.float32 for h in out.hidden_states)
    assert decision_flips(out.masks, expected.masks)['flipped_decisions'] < 0.05
    assert (out.tokens - expected.tokens).abs().mean() < 0.05


# ------------------------------------------------------------------ tools
def load_tool(path):
    spec = importlib.util.spec_from_file_location(osp.basename(path)[:-3], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def trained_digits(digits_root, tmp_path_factory):
    """A tiny DyT classifier trained a few iterations on the digits by the Runner."""
    from mmengine.runner import Runner
    folder = tmp_path_factory.mktemp('digits_low_precision')
    cfg = tiny_digits_cfg(digits_root, str(folder / 'run'),
                          save_random_base(str(folder / 'base.pth')), max_iters=8,
                          val_interval=8, **{'test_dataloader.dataset.indices': 64,
                                             'val_dataloader.dataset.indices': 64})
    runner = Runner.from_cfg(cfg)
    runner.train()
    config = str(folder / 'model.py')
    cfg.dump(config)
    return config, osp.join(str(folder / 'run'), 'iter_8.pth'), folder


def test_export_tool_writes_a_checked_int8_file_and_names_bad_precisions(trained_digits,
                                                                         tmp_path, capsys):
    config, checkpoint, _ = trained_digits
    tool = load_tool('tools/deploy/export.py')
    out = str(tmp_path / 'int8.onnx')
    tool.main([config, checkpoint, '--format', 'onnx', '--out', out, '--precision', 'int8',
               '--batch-size', '8', '--dynamic-batch'])
    printed = capsys.readouterr().out
    report = json.loads(printed.strip().splitlines()[-1])
    assert report['precision'] == 'int8' and set(report['mean_abs_diff']) == {'8', '1'}
    assert max(report['mean_abs_diff'].values()) <= 1e-3
    assert 'mean abs diff to its eager int8 reference' in printed
    assert not any('partial' in name for name in map(str, tmp_path.iterdir()))
    for extra, message in (
            (['--format', 'pt2', '--precision', 'int8'], '--precision int8 is ONNX Runtime\'s '
             'quantisation: it needs --format onnx (got --format pt2)'),
            (['--format', 'onnx', '--precision', 'fp16'], "argument --precision: invalid "
             "choice: 'fp16' (choose from 'fp32', 'bf16', 'int8')")):
        suffix = extra[1]
        with pytest.raises(SystemExit):
            tool.main([config, checkpoint, '--out', str(tmp_path / f'm.{suffix}'), *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r'ONNX Runtime cannot load .*m.partial.onnx: .*'
                                         r'bfloat16.*; .*m.onnx not written'):
        tool.main([config, checkpoint, '--format', 'onnx', '--out', str(tmp_path / 'm.onnx'),
                   '--precision', 'bf16'])
    assert not (tmp_path / 'm.onnx').exists()


def test_test_tool_and_evaluation_measure_each_precision_through_the_runner(trained_digits):
    """The accuracy table's evaluation: fp32, int8 in eager PyTorch and the int8 ONNX file
    itself in ONNX Runtime, each through the Runner (bf16 the same way); tools/test.py
    --precision int8 --runtime onnxruntime prints the file's metric and keep rate, the same."""
    config, checkpoint, folder = trained_digits
    from mmengine.config import Config

    from dyt_mm.analysis.toolbox import init_default_scope_of
    cfg = Config.fromfile(config)
    init_default_scope_of(cfg)
    runs = [('fp32', 'eager'), ('int8', 'eager'), ('int8', 'onnxruntime')]
    results = [evaluate_precision(cfg, checkpoint, precision, str(folder / f'{precision}_{rt}'),
                                  rt, name=f'{precision} {rt}') for precision, rt in runs]
    rows = metric_table(results, 'accuracy/top1')
    assert [row['precision'] for row in rows] == ['fp32 eager', 'int8 eager', 'int8 onnxruntime']
    assert rows[0]['metric_change'] == 0 and rows[0]['flipped_decisions'] == 0
    for row, result in zip(rows, results):
        assert 0 < result.keep_rate < 1 and result.masks.shape[0] == 64  # the test images
        assert abs(row['keep_rate_change']) < 0.02 and row['flipped_decisions'] < 0.05
        assert row['metric'] == result.metrics['accuracy/top1']
    assert glob.glob(str(folder / 'int8_onnxruntime' / '*' / 'network_int8.onnx'))
    proc = run_tool('tools/test.py', config, checkpoint, '--precision', 'int8', '--runtime',
                    'onnxruntime', '--work-dir', str(folder / 'tool'), '--cfg-options',
                    'log_level=INFO')
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout + proc.stderr
    assert f"accuracy/top1: {results[2].metrics['accuracy/top1']:.4f}" in printed
    assert f'keep_rate: {results[2].keep_rate:.4f}' in printed


def test_test_tool_refuses_onnxruntime_without_int8(capsys):
    tool = load_tool('tools/test.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['CONFIG', 'CKPT', '--runtime', 'onnxruntime'])
    assert ('--runtime onnxruntime tests the int8 ONNX file: it needs --precision int8 (got '
            '--precision fp32)') in capsys.readouterr().err


def test_precision_table_names_the_missing_demo_run(tmp_path, monkeypatch):
    tool = load_tool('tools/analysis/precision_table.py')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r'no seg demo run found \(work_dirs/seg_demo/target_\*'
                                         r' from here, .*\); run `make demo-seg` first, or give '
                                         r'--seg RUN_DIR'):
        tool.main(['--demos', 'seg'])
    (tmp_path / 'half_run').mkdir()
    with pytest.raises(SystemExit, match='half_run is not a finished digits demo run'):
        tool.main(['--demos', 'digits', '--digits', str(tmp_path / 'half_run')])
