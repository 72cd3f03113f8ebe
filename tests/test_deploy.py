"""Deployment: the sparse path exported (torch.export, ONNX), run in ONNX Runtime, compiled."""
import glob
import importlib.util
import json
import os.path as osp
import zipfile

import pytest
import torch
from helpers import REPO, TINY_VIT, run_tool, save_random_base, tiny_digits_cfg

from dyt_mm import DyTViT, calibrate_capacities, dyt_mode
from dyt_mm.analysis import build_model, dyt_parts, load_config, random_backbone_inputs
from dyt_mm.deploy import (TensorForward, compile_sparse, export_model, load_exported,
                           max_abs_diff)
from dyt_mm.deploy.benchmark import onnx_benchmark_report
from dyt_mm.models.dyt import TokenDispatcher

pytestmark = pytest.mark.usefixtures('single_thread')
SEG_DEMO = glob.glob(osp.join(REPO, 'configs/seg/demo/dyt-r*.py'))[0]


def with_busy_dispatchers(model, seed=0):
    """Random gates that keep clearly different tokens per input."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, TokenDispatcher):
            torch.nn.init.normal_(module.gate.weight, std=0.5)
    return model


def images(batch, size=32, seed=3):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def eager(forward, inputs, mode='sparse'):
    with dyt_mode(forward, mode), torch.no_grad():
        return list(forward(inputs))


# ------------------------------------------------------------------ the core
def test_layers_that_keep_nothing_everything_or_some_export_and_agree(tmp_path):
    """No class token, so the first layer really keeps no token; attention and MLP both
    dispatched, so both sparse forms (token-wise, token-mixing) are in the graph."""
    torch.manual_seed(0)
    vit = DyTViT(**dict(TINY_VIT, arch=dict(embed_dims=64, depth=3, num_heads=2)),
                 variant='attn_mlp', class_token=False).eval()
    with_busy_dispatchers(vit)
    with torch.no_grad():
        for block, bias in zip(vit.blocks, (-1e4, 1e4)):  # block 2 keeps some
            for dispatcher in block.dispatchers.values():
                dispatcher.gate.bias.fill_(bias)
    forward = TensorForward(vit)
    path = str(tmp_path / 'vit.onnx')  # .pt2 round trips: the whole-model tests
    export_model(forward, images(3), path, dynamic_batch=True)
    exported = load_exported(path)
    for batch in (1, 4):  # other sizes and other images than traced: other kept counts
        x = images(batch, seed=batch)
        with dyt_mode(vit, 'sparse'), torch.no_grad():
            masks = vit(x).masks
        assert masks[:, :2].max() == 0 and masks[:, 2:4].min() == 1
        assert 0 < masks[:, 4:].mean() < 1
        assert max_abs_diff(exported(x), eager(forward, x)) <= 1e-5


@pytest.mark.parametrize('mode', ['sparse', 'capacity'])
def test_compiled_sparse_model_equals_eager(mode):
    torch.manual_seed(0)
    vit = with_busy_dispatchers(DyTViT(**TINY_VIT).eval())
    x = images(3)
    if mode == 'capacity':
        calibrate_capacities(vit, [x])  # the largest counts: equal to sparse
    compiled = compile_sparse(vit, dynamic=False)
    with dyt_mode(vit, mode), torch.no_grad():
        expected = vit(x)
        out = compiled(x)
    assert 0 < expected.masks.mean() < 1
    assert torch.equal(out.masks, expected.masks)
    torch.testing.assert_close(out.tokens, expected.tokens, atol=1e-5, rtol=0)


def test_pt2_archive_with_pickled_objects_is_refused_before_loading(tmp_path):
    path = tmp_path / 'bad.pt2'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('bad/data/weights/model_weights_config.json', json.dumps(
            {'config': {'blocks.0.weight': {'path_name': 'weight_0', 'use_pickle': True}}}))
    with pytest.raises(ValueError, match='holds pickled objects .blocks.0.weight.; it is not'):
        load_exported(str(path))
    other = tmp_path / 'model.pth'
    other.write_bytes(b'')
    with pytest.raises(ValueError, match="unknown exported file extension .* 'pth'"):
        load_exported(str(other))


# ------------------------------------------------------------------ whole models
@pytest.fixture(scope='module')
def cls_files(digits_root, tmp_path_factory):
    """A tiny classifier config (no test data: random inputs) and a random checkpoint."""
    folder = tmp_path_factory.mktemp('cls_export')
    cfg = tiny_digits_cfg(str(folder / 'no_data'), str(folder),
                          save_random_base(str(folder / 'base.pth')))
    return save_config_and_checkpoint(cfg, folder)


@pytest.fixture(scope='module')
def seg_files(tmp_path_factory):
    return save_config_and_checkpoint(load_config(SEG_DEMO), tmp_path_factory.mktemp('seg'))


def save_config_and_checkpoint(cfg, folder):
    model = with_busy_dispatchers(build_model(cfg))
    cfg_path, ckpt = str(folder / 'model.py'), str(folder / 'model.pth')
    cfg.dump(cfg_path)
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return cfg_path, ckpt


def test_classifier_exports_whole_with_its_head_and_agrees(cls_files, tmp_path):
    model = build_model(load_config(cls_files[0]), cls_files[1])
    forward = TensorForward(model)
    x = random_backbone_inputs(model, 2)
    path = str(tmp_path / 'cls.pt2')
    export_model(forward, x, path)
    logits = load_exported(path)(x)
    assert [t.shape for t in logits] == [(2, model.head.num_classes)]
    assert max_abs_diff(logits, eager(forward, x)) <= 1e-5


@pytest.mark.parametrize('fmt', ['onnx', 'pt2'])
def test_segmentor_exports_backbone_and_decode_head_at_512_and_agrees(fmt, seg_files, tmp_path):
    model = build_model(load_config(seg_files[0]), seg_files[1])
    forward = TensorForward(model)
    x = random_backbone_inputs(model, 1, shape=(512, 512))
    path = str(tmp_path / f'seg.{fmt}')
    export_model(forward, x, path)
    logits = load_exported(path)(x)
    num_classes = model.decode_head.num_classes
    size = 512 // model.backbone.patch_size * 4  # the decode head's resolution
    assert [t.shape for t in logits] == [(1, num_classes, size, size)]
    with dyt_mode(model, 'sparse'), torch.no_grad():
        assert 0 < model.backbone.forward_with_masks(x)[1].mean() < 1
    assert max_abs_diff(logits, eager(forward, x)) <= 1e-4


# ------------------------------------------------------------------ tools
def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_export_tool_checks_the_file_and_replaces_only_with_force(cls_files, tmp_path):
    cfg_path, ckpt = cls_files
    out = tmp_path / 'cls.onnx'
    out.write_bytes(b'a file the user keeps')
    args = ['tools/deploy/export.py', cfg_path, ckpt, '--format', 'onnx', '--out', str(out),
            '--batch-size', '3', '--dynamic-batch']
    refused = run_tool(*args)
    assert refused.returncode != 0 and 'exists; not overwriting it' in refused.stderr
    assert out.read_bytes() == b'a file the user keeps'

    proc = run_tool(*args, '--force')
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert set(report['max_abs_diff']) == {'3', '1'}  # the traced batch and another one
    assert max(report['max_abs_diff'].values()) <= 1e-4
    assert 'max abs diff to PyTorch' in proc.stdout and 'random inputs' in report['inputs']
    assert not glob.glob(str(tmp_path / '*partial*'))
    model = build_model(load_config(cfg_path), ckpt)
    x = random_backbone_inputs(model, 5, seed=7)
    assert max_abs_diff(load_exported(str(out))(x), eager(TensorForward(model), x)) <= 1e-4


def load_export_tool():
    spec = importlib.util.spec_from_file_location('export_tool',
                                                  osp.join(REPO, 'tools/deploy/export.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('extra, message', [
    (['--format', 'pt2', '--out', '{tmp}/m.onnx'], '--out {tmp}/m.onnx must end in .pt2'),
    (['--format', 'tflite', '--out', '{tmp}/m.onnx'], "invalid choice: 'tflite'"),
    (['--format', 'onnx', '--out', '{tmp}/m.onnx', '--batch-size', '0'], 'must be >= 1, got 0'),
    (['--format', 'onnx', '--out', '{tmp}/no/such/m.onnx'], 'the folder of --out does not exist'),
    (['--format', 'onnx', '--out', '{tmp}/m.onnx', '--tolerance', '-1'], 'must be > 0'),
    (['--format', 'onnx', '--out', '{tmp}/m.onnx', '--mode', 'capacity', '--capacity', '2',
      '--capacity-quantile', '0.9'], 'argument --capacity-quantile: not allowed with argument '
     '--capacity'),
    (['--format', 'onnx', '--out', '{tmp}/m.onnx', '--capacity', '2'],
     '--capacity applies to --mode capacity only (got --mode sparse)'),
    (['--format', 'onnx', '--out', '{tmp}/m.onnx', '--mode', 'capacity', '--capacity', '0'],
     'argument --capacity: must be >= 1, got 0'),
])
def test_export_tool_bad_arguments_are_named(extra, message, cls_files, tmp_path, capsys):
    tool = load_export_tool()
    argv = [cls_files[0], cls_files[1]] + [a.format(tmp=tmp_path) for a in extra]
    with pytest.raises(SystemExit):
        tool.main(argv)
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_export_tool_capacity_mode_prints_capacities_and_warns_on_overflow(cls_files, tmp_path,
                                                                          capsys):
    """Calibrated on the checked inputs (quantile 1): no overflow, the file equals eager
    sparse. A capacity of 2 tokens (the class token and one more) overflows: warned."""
    tool = load_export_tool()
    cfg_path, ckpt = cls_files
    out = str(tmp_path / 'cap.onnx')
    tool.main([cfg_path, ckpt, '--format', 'onnx', '--out', out, '--mode', 'capacity',
               '--batch-size', '3', '--dynamic-batch'])
    printed = capsys.readouterr()
    report = last_json(printed.out)
    assert 'capacity overflow' not in printed.err
    assert report['capacity_overflow'] == {'3': {}, '1': {}}
    assert f"capacities (tokens per sample, per site): {report['capacities']}" in printed.out
    model = build_model(load_config(cfg_path), ckpt)
    x = random_backbone_inputs(model, 3)  # the tool's (random) inputs
    assert max_abs_diff(load_exported(out)(x), eager(TensorForward(model), x)) <= 1e-5

    tool.main([cfg_path, ckpt, '--format', 'pt2', '--out', str(tmp_path / 'cap.pt2'),
               '--mode', 'capacity', '--capacity', '2'])
    printed = capsys.readouterr()
    overflow = last_json(printed.out)['capacity_overflow']['1']
    assert overflow and all(count > 0 for count in overflow.values())
    assert 'warning: capacity overflow, kept tokens dropped per site (' in printed.err
    assert all(f'{site}: {count}' in printed.err for site, count in overflow.items())


@pytest.mark.parametrize('mode', ['sparse', 'complete'])
def test_export_tool_does_not_write_a_file_beyond_the_tolerance(mode, cls_files, tmp_path):
    """ONNX Runtime differs from PyTorch by ~1e-6: above a tolerance of 1e-12. The sparse
    mode's error also names the cause peculiar to it (a keep decision at the cut)."""
    tool = load_export_tool()
    out = tmp_path / 'm.onnx'
    with pytest.raises(SystemExit) as error:
        tool.main([*cls_files, '--format', 'onnx', '--out', str(out), '--mode', mode,
                   '--tolerance', '1e-12'])
    assert '(> --tolerance 1e-12); ' + f'{out} not written' in str(error.value)
    assert ('within float rounding of its dispatcher\'s cut' in str(error.value)) == \
        (mode == 'sparse')
    assert not out.exists() and not glob.glob(str(tmp_path / '*partial*'))


def test_export_tool_names_a_missing_checkpoint_and_an_unsupported_model(cls_files, tmp_path):
    tool = load_export_tool()
    out = ['--format', 'pt2', '--out', str(tmp_path / 'm.pt2')]
    with pytest.raises(SystemExit, match='checkpoint not found: nowhere.pth'):
        tool.main([cls_files[0], 'nowhere.pth', *out])
    video = glob.glob(osp.join(REPO, 'configs/video/demo/dyt-r*.py'))[0]
    with pytest.raises(SystemExit, match="classification and segmentation models .* "
                                         "has default_scope 'mmaction'"):
        tool.main([video, cls_files[1], *out])
    assert not (tmp_path / 'm.pt2').exists()


def test_onnx_benchmark_times_the_exports_against_eager(cls_files):
    cfg = load_config(cls_files[0])
    model = build_model(cfg, cls_files[1])
    ticks = []
    report = onnx_benchmark_report(model, cfg, batch_size=2, num_iters=2, warmup=0,
                                   calibrate_rate=0.5, threads=1,
                                   progress=lambda: ticks.append(1), capacity_quantile=1.0,
                                   max_load=0.001)
    assert len(ticks) == 10 and dyt_parts(model)[1].mode == 'masked'
    assert report['keep_rate'] == report['calibrated_keep_rate'] == 0.5
    for mode in ('complete', 'sparse', 'capacity'):
        assert report[f'max_abs_diff_{mode}'] <= 1e-4
    # K = the largest kept count per site on these inputs: nothing is dropped
    assert len(report['capacities']) == len(dyt_parts(model)[1].sites)
    assert not any(report['capacity_overflow'].values())
    seconds = {run: report[f'seconds_{run}']['median']
               for run in ('eager_complete', 'onnx_complete', 'onnx_sparse', 'onnx_capacity',
                           'eager_linear_layers')}
    assert report['speedup'] == pytest.approx(seconds['onnx_complete'] / seconds['onnx_sparse'])
    assert report['speedup_capacity'] == pytest.approx(seconds['onnx_complete'] /
                                                       seconds['onnx_capacity'])
    assert report['speedup_over_eager'] == pytest.approx(seconds['eager_complete'] /
                                                         seconds['onnx_sparse'])
    assert report['efficiency'] == pytest.approx(report['speedup'] / report['ceiling'])
    assert report['speedup_over_eager_bound'] == pytest.approx(
        report['ceiling'] * seconds['eager_complete'] / seconds['eager_linear_layers'])
    assert report['ceiling'] > 1
    # timed on a loaded machine (above the limit given): the report says so
    assert report['unreliable'][0].startswith('the machine was loaded')
