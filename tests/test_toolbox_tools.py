"""The toolboxes' own tools (``mim run mmpretrain ...``) on a DyT run's config, adapter-only
checkpoint, predictions and logs; TensorBoard as the log backend; the per-layer keep-rate
picture (docs/toolbox_tools.md, docs/logs.md).

Each tool is the script ``mim run`` finds (``<package>/.mim/tools/**/<name>.py``), run by
``tools/misc/run_toolbox_tool.py`` in this process as ``__main__`` with its command line (a
fresh interpreter per tool would spend seconds importing the toolboxes each time).
"""
import glob
import json
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
from helpers import REPO, save_random_base, tiny_digits_cfg

import dyt_mm.cls  # noqa: F401
from dyt_mm.analysis.keep_rate_log import read_keep_rates
from dyt_mm.engine import DyTRunner

LAUNCHER = osp.join(REPO, 'tools/misc/run_toolbox_tool.py')
SEG_DEMO = osp.join(REPO, 'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py')
DET_DEMO = osp.join(REPO, 'configs/det/demo/dyt-r0.5_mask-rcnn_vit-tiny-p8_shapes-target.py')
VIDEO_DEMO = osp.join(REPO, 'configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py')


def run_script(script: str, *args, capsys=None) -> str:
    """``python SCRIPT ARGS`` in this process; returns what it printed (with capsys)."""
    argv = sys.argv
    sys.argv = [script, *map(str, args)]
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as end:
        assert end.code in (None, 0), f'{osp.basename(script)} {args} exited with {end.code}'
    finally:
        sys.argv = argv
    if capsys is None:
        return ''
    printed = capsys.readouterr()
    return printed.out + printed.err


def run_toolbox_tool(package: str, name: str, *args, capsys=None) -> str:
    """``mim run PACKAGE NAME ARGS``, through tools/misc/run_toolbox_tool.py."""
    return run_script(LAUNCHER, package, name, *args, capsys=capsys)


@pytest.fixture(scope='module')
def dyt_run(digits_root, tmp_path_factory, single_thread):
    """Four iterations of the tiny digits DyT with adapter-only checkpoints, validated at
    2 and 4, logged to json and TensorBoard; then its predictions on the val split, as
    ``tools/test.py --out`` writes them. Returns a dict of the paths."""
    root = tmp_path_factory.mktemp('dyt_run')
    base = save_random_base(str(root / 'base.pth'))
    work_dir = str(root / 'work')
    cfg = tiny_digits_cfg(digits_root, work_dir, base, val_interval=2, **{
        'visualizer.vis_backends': [dict(type='LocalVisBackend'),
                                    dict(type='TensorboardVisBackend')]})
    cfg.custom_hooks = [dict(type='DyTHook', save_trainable_only=True)]
    config = str(root / 'dyt_digits.py')
    cfg.dump(config)
    DyTRunner.from_cfg(cfg).train()
    checkpoint = osp.join(work_dir, 'iter_4.pth')
    predictions = str(root / 'predictions.pkl')
    cfg.merge_from_dict({'work_dir': str(root / 'test'), 'load_from': checkpoint,
                         'test_evaluator': [dict(type='Accuracy', topk=(1, )),
                                            dict(type='DumpResults', out_file_path=predictions)]})
    DyTRunner.from_cfg(cfg).test()
    vis_data, = glob.glob(osp.join(work_dir, '*', 'vis_data'))
    return dict(root=root, config=config, checkpoint=checkpoint, predictions=predictions,
                scalars=osp.join(vis_data, 'scalars.json'), vis_data=vis_data)


def logged(scalars: str):
    with open(scalars, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def test_tensorboard_backend_holds_the_keep_rate(dyt_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = glob.glob(osp.join(dyt_run['vis_data'], 'events.out.tfevents.*'))
    assert len(events) == 1, events
    accumulator = EventAccumulator(events[0])
    accumulator.Reload()
    tags = accumulator.Tags()['scalars']
    # the json backend's values, in the order written: 4 training iterations, 2 validations
    written = [line['keep_rate'] for line in logged(dyt_run['scalars'])]
    assert len(written) == 6
    assert [e.value for e in accumulator.Scalars('keep_rate')] == pytest.approx(written)
    assert 'keep_rate_l1' in tags and 'accuracy/top1' in tags


def test_per_layer_keep_rates_are_the_logged_ones_and_are_drawn(dyt_run, tmp_path, capsys):
    lines = logged(dyt_run['scalars'])
    train = read_keep_rates(dyt_run['scalars'], 'train')
    assert train.points == [1, 2, 3, 4]
    assert train.rates.tolist() == [[line[f'keep_rate_l{i}'] for line in lines if 'iter' in line]
                                    for i in range(2)]
    val = read_keep_rates(dyt_run['scalars'], 'val')
    assert val.points == [1, 2] and val.rates.shape == (2, 2)
    assert np.allclose(val.rates.mean(axis=0),
                       [line['keep_rate'] for line in lines if 'accuracy/top1' in line])
    out = tmp_path / 'keep.png'
    printed = run_script(osp.join(REPO, 'tools/analysis/plot_keep_rates.py'), dyt_run['scalars'],
                         '--out', out, capsys=capsys)
    assert out.stat().st_size > 0 and '2 layers x 4 iteration points (1 ... 4)' in printed


def test_a_log_without_keep_rates_is_named(tmp_path):
    plain = tmp_path / 'scalars.json'
    plain.write_text(json.dumps({'loss': 1.0, 'iter': 1, 'step': 1}) + '\n')
    with pytest.raises(ValueError, match=f'{plain} has no train line with per-layer keep'):
        read_keep_rates(str(plain))
    with pytest.raises(ValueError, match="phase must be one of train, val, got 'test'"):
        read_keep_rates(str(plain), 'test')


def test_mmpretrain_analyze_logs_plots_dyt_keys(dyt_run, tmp_path, capsys):
    out = tmp_path / 'curve.png'
    run_toolbox_tool('mmpretrain', 'analyze_logs', 'plot_curve', dyt_run['scalars'], '--keys',
                     'keep_rate', 'loss_rate', '--out', out)
    assert out.stat().st_size > 0
    printed = run_toolbox_tool('mmpretrain', 'analyze_logs', 'cal_train_time',
                               dyt_run['scalars'], capsys=capsys)
    assert 'average iter time' in printed


def test_mmpretrain_print_config_and_get_flops(dyt_run, capsys):
    printed = run_toolbox_tool('mmpretrain', 'print_config', dyt_run['config'], capsys=capsys)
    assert "type='DyTVisionTransformer'" in printed
    printed = run_toolbox_tool('mmpretrain', 'get_flops', dyt_run['config'], '--shape', 32, 32,
                               capsys=capsys)
    assert 'Flops: ' in printed and 'TokenDispatcher(' in printed  # counted with the model


def test_mmpretrain_tools_on_predictions(dyt_run, tmp_path, capsys):
    printed = run_toolbox_tool('mmpretrain', 'eval_metric', dyt_run['predictions'], '--metric',
                               'type=Accuracy', capsys=capsys)
    assert "'accuracy/top1'" in printed
    run_toolbox_tool('mmpretrain', 'analyze_results', dyt_run['config'], dyt_run['predictions'],
                     '--out-dir', tmp_path / 'results', '--topk', 1)
    assert glob.glob(str(tmp_path / 'results' / 'fail' / '*.png'))
    for name, source in (('predictions', dyt_run['predictions']),
                         ('checkpoint', dyt_run['checkpoint'])):  # the adapter-only one
        run_toolbox_tool('mmpretrain', 'confusion_matrix', dyt_run['config'], source,
                         '--show-path', tmp_path / f'{name}.png')
    # the checkpoint's matrix (tool's own test run, mmengine's plain Runner) is the predictions'
    assert (tmp_path / 'checkpoint.png').read_bytes() == (tmp_path / 'predictions.png').read_bytes()


def test_mmpretrain_browse_dataset_and_vis_scheduler(dyt_run, tmp_path):
    run_toolbox_tool('mmpretrain', 'browse_dataset', dyt_run['config'], '--output-dir',
                     tmp_path / 'browse', '--show-number', 1, '--mode', 'original')
    assert len(glob.glob(str(tmp_path / 'browse' / '*.png'))) == 1
    # the DyT hooks need a DyT model; the tool trains a stand-in one to record the lr
    run_toolbox_tool('mmpretrain', 'vis_scheduler', dyt_run['config'], '--dataset-size', 64,
                     '--ngpus', 1, '--save-path', tmp_path / 'lr.png', '--not-show',
                     '--cfg-options', 'custom_hooks=[]')
    assert (tmp_path / 'lr.png').stat().st_size > 0


def test_seg_det_video_print_config_and_video_get_flops(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # mmseg's print_config also dumps the config to ./example.py
    for package, config, model in (('mmseg', SEG_DEMO, 'DyTEncoderDecoder'),
                                   ('mmdet', DET_DEMO, 'DyTMaskRCNN'),
                                   ('mmaction', VIDEO_DEMO, 'DyTRecognizer3D')):
        printed = run_toolbox_tool(package, 'print_config', config, capsys=capsys)
        assert f"type='{model}'" in printed, package
    printed = run_toolbox_tool('mmaction', 'get_flops', VIDEO_DEMO, '--shape', 1, 3, 8, 64, 64,
                               capsys=capsys)
    assert 'Flops: ' in printed and '|  backbone.vit' in printed


def test_the_launcher_names_an_unknown_tool():
    argv = sys.argv
    sys.argv = [LAUNCHER, 'mmseg', 'no_such_tool']
    try:
        with pytest.raises(SystemExit, match="error: mmseg has 0 tools named 'no_such_tool'; "
                           "it has analyze_logs, "):
            runpy.run_path(LAUNCHER, run_name='__main__')
    finally:
        sys.argv = argv
