"""Bad input to the tools and the Python API (issue 27, items 3, 4 and 6 and "every new
tool's bad input"): each case ends in a clear error that names the bad value or file and
what is allowed, before any long work, or is shown to work."""
import importlib.util
import json
import os
import os.path as osp
import pathlib
import re

import numpy as np
import pytest
import torch
from helpers import REPO, save_random_base, tiny_digits_cfg
from PIL import Image

from dyt_mm.analysis import build_model
from dyt_mm.apis import inference, init_model
from dyt_mm.engine import DyTRunner

pytestmark = pytest.mark.usefixtures('single_thread')

SEG_DEMO = 'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py'
VIDEO_DEMO = 'configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py'


@pytest.fixture(scope='module', autouse=True)
def restored_default_scope():
    """The tools and the Runner set the global default scope: leave the next tests theirs."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def tool_main(path):
    """The ``main(argv)`` of a repository tool, run in this process."""
    spec = importlib.util.spec_from_file_location(osp.basename(path)[:-3], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def usage_error(main, argv, capsys) -> str:
    """What a tool that refuses its arguments prints, as argparse does (exit status 2)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny digits config (no data: random inputs), a random checkpoint of it, and a
    config of a model without DyT (mmpretrain's own ViT)."""
    folder = tmp_path_factory.mktemp('bad_input')
    cfg = tiny_digits_cfg(str(folder / 'no_data'), str(folder / 'work'),
                          save_random_base(str(folder / 'base.pth')))
    config, checkpoint = str(folder / 'tiny.py'), str(folder / 'tiny.pth')
    cfg.dump(config)
    torch.save({'state_dict': build_model(cfg).state_dict()}, checkpoint)
    cfg.model = dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                      arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                feedforward_channels=128)),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
    plain = str(folder / 'plain_vit.py')
    cfg.dump(plain)
    return config, checkpoint, plain


# ------------------------------------------------- 3. a test list's label outside the classes
def test_evaluation_refuses_a_label_outside_the_classes(digits_root, tmp_path):
    """Training refused such a list (label checked in loss()); testing only lowered the
    accuracy. Now both name the image, the label and the classes of the head."""
    folder = osp.join(digits_root, 'target/val/4')
    images = sorted(os.listdir(folder))[:12]

    def test_with_label(bad_label):
        ann = tmp_path / f'test_{bad_label}.txt'
        ann.write_text(''.join(f'{name} {bad_label if i == 7 else 4}\n'
                               for i, name in enumerate(images)))
        cfg = tiny_digits_cfg(digits_root, str(tmp_path / f'work_{bad_label}'))
        cfg.test_dataloader.dataset = dict(
            type='CustomDataset', data_root=folder, ann_file=str(ann), data_prefix='',
            classes=[str(i) for i in range(13)], pipeline=cfg.test_dataloader.dataset.pipeline)
        cfg.test_dataloader.batch_size = 4
        return DyTRunner.from_cfg(cfg).test()

    assert 0 <= test_with_label(4)['accuracy/top1'] <= 100  # the same list, labels in range
    with pytest.raises(ValueError, match=f'label 12 of {osp.join(folder, images[7])} is outside '
                       r'the 10 classes of the head \(0\.\.9\)'):
        test_with_label(12)


# ------------------------------------------------------------- 4. compare_methods.py
@pytest.mark.parametrize('first', ['cls', 'seg'])
def test_compare_methods_refuses_configs_of_different_toolboxes(files, first, capsys):
    """Segmentation first gave a meaningless table and exit 0; classification first a
    registry KeyError. Refused before any model is built, naming both configs."""
    seg = osp.join(REPO, SEG_DEMO)
    configs = [files[0], seg] if first == 'cls' else [seg, files[0]]
    scopes = ['mmpretrain config (classification)', 'mmseg config (segmentation)']
    if first == 'seg':
        scopes.reverse()
    err = usage_error(tool_main('tools/analysis/compare_methods.py'),
                      [*configs, '--num-iters', '1', '--no-train'], capsys)
    assert (f'{configs[0]} is a {scopes[0]} but {configs[1]} is a {scopes[1]}: '
            'compare_methods.py runs all models on the same inputs') in err
    assert '[build' not in err


def test_compare_methods_names_a_missing_config_and_a_bad_number(files, tmp_path, capsys):
    main = tool_main('tools/analysis/compare_methods.py')
    err = usage_error(main, [files[0], 'configs/no/such.py'], capsys)
    assert 'error: config file not found: configs/no/such.py' in err and '[build' not in err
    err = usage_error(main, [files[0], files[1]], capsys)
    assert f'{files[1]} is not a config file: a config ends in .py, .json, .yaml, .yml' in err
    assert 'must be >= 1, got 0' in usage_error(main, [files[0], '--batch-size', '0'], capsys)
    err = usage_error(main, [files[0], '--out', str(tmp_path / 'no/such/table.md')], capsys)
    assert f'the folder of --out does not exist: {tmp_path}/no/such' in err

    # configs of one toolbox pass the checks and are compared
    main([files[0], files[0], '--no-train', '--num-iters', '1', '--warmup', '0',
          '--batch-size', '2', '--out', str(tmp_path / 'table.md')])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row['config'] for row in report['rows']] == [files[0]] * 2
    assert (tmp_path / 'table.md').read_text().startswith('|')


# ---------------------------------------------------------------- 6. budget_sweep.py
@pytest.mark.parametrize('extra, message', [
    (['--targets', '0.5', '--batch-size', '0'], 'argument --batch-size: must be >= 1, got 0'),
    (['--targets', '0.5', '--num-iters', '0'], 'argument --num-iters: must be >= 1, got 0'),
    (['--targets', '0.5', '--calibration-samples', '0'], 'must be >= 1, got 0'),
    (['--targets', '0.5', '--out', '{tmp}/curve.xyz'],
     "--out {tmp}/curve.xyz must end in .avif, .eps, .gif, .jpeg, .jpg, .pdf, .pgf, .png"),
    (['--targets', '0.5', '--out', '{tmp}/no/such/curve.png'],
     'the folder of --out does not exist: {tmp}/no/such'),
    (['--targets', '1.5'], 'target keep rate 1.5 is outside (0, 1]'),
    (['--targets', '0.5', '0'], 'argument --targets: must be > 0, got 0.0'),
    (['--targets', '-0.2'], 'argument --targets: must be > 0, got -0.2'),
    (['--targets'], 'argument --targets: expected at least one argument'),
    (['--targets', 'half'], "argument --targets: 'half' is not a number"),
    (['--targets', '0', '--unit', 'gflops'], 'argument --targets: must be > 0, got 0.0'),
])
def test_budget_sweep_checks_its_arguments_before_the_sweep(extra, message, files, tmp_path,
                                                            capsys):
    """--batch-size 0 and --out x.xyz failed only after the whole sweep had run. Now every
    argument is refused at parse time, before the config or the checkpoint is read."""
    argv = ['configs/no/such.py', 'no_such.pth'] + [a.format(tmp=tmp_path) for a in extra]
    err = usage_error(tool_main('tools/analysis/budget_sweep.py'), argv, capsys)
    assert message.format(tmp=tmp_path) in err
    assert 'not found' not in err  # the config and the checkpoint were not looked at


def test_budget_sweep_keeps_an_existing_plot_and_names_swapped_arguments(files, tmp_path,
                                                                         capsys):
    main = tool_main('tools/analysis/budget_sweep.py')
    out = tmp_path / 'curve.png'
    out.write_bytes(b'a plot the user keeps')
    err = usage_error(main, [*files[:2], '--targets', '0.5', '--out', str(out)], capsys)
    assert f'{out} exists; not overwriting it (give --force to replace it)' in err
    assert out.read_bytes() == b'a plot the user keeps'
    with pytest.raises(SystemExit, match=f'the config and the checkpoint are swapped: give the '
                       f'config first, then the checkpoint \\(got {files[1]} as the config'):
        main([files[1], files[0], '--targets', '0.5'])


# ------------------------------------------------------------------------ tools/test.py
def test_test_tool_says_which_argument_is_which(files):
    """Checkpoint first, config second gave mmengine's traceback 'Only py/yml/yaml/json type
    are supported now!'."""
    config, checkpoint, _ = files
    with pytest.raises(SystemExit) as info:  # a message, printed without a traceback
        tool_main('tools/test.py')([checkpoint, config])
    assert info.value.code == (
        f'error: the config and the checkpoint are swapped: give the config first, then the '
        f'checkpoint (got {checkpoint} as the config and {config} as the checkpoint)')


# ------------------------------------------------------------------------ export.py
def test_export_refuses_bad_modes_configs_and_outputs(files, tmp_path, capsys):
    main = tool_main('tools/deploy/export.py')
    config, checkpoint, plain = files
    out = str(tmp_path / 'm.onnx')
    err = usage_error(main, [config, checkpoint, '--format', 'onnx', '--out', out,
                             '--mode', 'fast'], capsys)
    assert "argument --mode: invalid choice: 'fast' (choose from 'sparse', 'capacity', " in err
    err = usage_error(main, [config, checkpoint, '--format', 'onnx', '--out',
                             str(tmp_path / 'no/such/m.onnx')], capsys)
    assert f'the folder of --out does not exist: {tmp_path}/no/such' in err

    with open(out, 'wb') as f:
        f.write(b'an export the user keeps')
    err = usage_error(main, [config, checkpoint, '--format', 'onnx', '--out', out], capsys)
    assert f'{out} exists; not overwriting it (give --force to replace it)' in err
    assert open(out, 'rb').read() == b'an export the user keeps'

    with pytest.raises(SystemExit, match=f'{plain} is not a DyT model config: the analysis '
                       'tools need a model with exactly one DyT backbone; ImageClassifier has 0'):
        main([plain, checkpoint, '--format', 'onnx', '--out', out, '--force'])
    with pytest.raises(SystemExit, match='the config and the checkpoint are swapped'):
        main([checkpoint, config, '--format', 'onnx', '--out', out, '--force'])
    assert open(out, 'rb').read() == b'an export the user keeps'


# ------------------------------------------------------------------- benchmark_onnx.py
def test_benchmark_onnx_runs_a_swin_and_names_a_checkpoint_given_as_config(files, tmp_path,
                                                                           capsys):
    """A Swin config works: its DyT backbone exports in both modes, and each export agrees
    with PyTorch (the Swin's windows and patch merging are plain tensor operations)."""
    cfg = tiny_digits_cfg(str(tmp_path / 'no_data'), str(tmp_path),
                          **{'model.head.in_channels': 64})
    cfg.model.backbone = dict(type='DyTSwinTransformer', img_size=32, patch_size=4,
                              window_size=4, adapter=dict(bottleneck=8),
                              arch=dict(embed_dims=32, depths=(2, 2), num_heads=(2, 4)))
    swin = str(tmp_path / 'swin.py')
    cfg.dump(swin)
    main = tool_main('tools/deploy/benchmark_onnx.py')
    main([swin, '--batch-size', '2', '--num-iters', '1', '--warmup', '0', '--threads', '1'])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['max_abs_diff_complete'] < 1e-4 and report['max_abs_diff_sparse'] < 1e-4
    assert 0 < report['keep_rate'] < 1 and report['gflops_sparse'] < report['gflops_complete']

    with pytest.raises(SystemExit, match=f'{files[1]} is not a config file'):
        main([files[1], '--num-iters', '1'])


# ------------------------------------------------------------------------- the API
def save_image(path, size, channels=3, seed=0) -> str:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope='module')
def digits_model():
    cfg = tiny_digits_cfg('unused', 'unused')
    return init_model(cfg, None)


def test_api_names_a_file_it_cannot_read(digits_model, tmp_path):
    empty, text = tmp_path / 'empty.png', tmp_path / 'text.png'
    empty.write_bytes(b'')
    text.write_text('not an image')
    cases = [(str(empty), ValueError, f'image file {empty} is empty (0 bytes)'),
             (str(text), ValueError, f'image file {text} could not be decoded as an image'),
             (str(tmp_path / 'missing.png'), FileNotFoundError,
              f'input file not found: {tmp_path}/missing.png'),
             (str(tmp_path), ValueError, f'input {tmp_path} is a folder, not an image or video'),
             (7, TypeError, 'inference() takes a file path or a list of them, got int'),
             ([7], TypeError, 'an input must be a file path (str or os.PathLike), got int 7')]
    for path, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            inference(digits_model, path)


def test_api_refuses_a_huge_image_and_says_how_to_resize_it(digits_model, tmp_path):
    """The digits configs' test pipeline loads and packs: their data is written at 32 x 32.
    A 4000 x 4000 image ran on as 1,000,000 tokens (5 GB). The error says how to bring it to
    the model's size, and that way works."""
    huge = tmp_path / 'huge.png'
    Image.new('RGB', (4000, 4000), (30, 60, 90)).save(huge)
    with pytest.raises(ValueError, match=f'{huge} reaches the model as 4000x4000 pixels after '
                       "the config's test pipeline, 15625 times the 32x32 input the model was "
                       r"built for .* dict\(type='Resize', scale=\(32, 32\)\)"):
        inference(digits_model, str(huge))
    at_limit = save_image(tmp_path / 'at_limit.png', (128, 128))  # 16 times: still runs
    assert inference(digits_model, at_limit).keep_rates.shape == (2, )

    pipeline = [dict(type='LoadCheckedImage'), dict(type='Resize', scale=(32, 32)),
                dict(type='PackInputs')]
    resizing = init_model(digits_model.cfg, None,
                          cfg_options={'test_dataloader.dataset.pipeline': pipeline})
    resizing.load_state_dict(digits_model.state_dict())
    small = tmp_path / 'small.png'
    Image.new('RGB', (32, 32), (30, 60, 90)).save(small)
    assert torch.equal(inference(resizing, str(huge)).pred_score,
                       inference(digits_model, str(small)).pred_score)


def test_api_names_an_image_the_model_cannot_take(digits_model, tmp_path):
    one = save_image(tmp_path / 'one.png', (1, 1))
    with pytest.raises(ValueError, match=f'{one}: input size 1x1 is not divisible by the patch '
                       'size 8'):
        inference(digits_model, one)


def test_api_reads_a_grey_png_as_its_three_channel_copy(digits_model, tmp_path):
    grey = save_image(tmp_path / 'grey.png', (32, 32), channels=1)
    pixels = np.asarray(Image.open(grey))
    rgb = tmp_path / 'rgb.png'
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(rgb)
    a, b = inference(digits_model, [grey, pathlib.Path(rgb)])
    assert torch.equal(a.pred_score, b.pred_score) and torch.equal(a.keep_rates, b.keep_rates)


def test_api_batch_names_its_bad_file_and_never_shifts_results(digits_model, tmp_path):
    good = [save_image(tmp_path / f'good{i}.png', (32, 32), seed=i) for i in range(3)]
    text = tmp_path / 'text.png'
    text.write_text('not an image')
    with pytest.raises(ValueError, match=f'image file {text} could not be decoded'):
        inference(digits_model, [good[0], str(text), good[1]])
    # a missing file late in the list is found before the first file is run
    with pytest.raises(FileNotFoundError, match=f'input file not found: {tmp_path}/gone.png'):
        inference(digits_model, [str(text), good[0], str(tmp_path / 'gone.png')])
    singles = [inference(digits_model, path) for path in good]
    batch = inference(digits_model, [good[2], good[0], good[1], good[0]])
    for sample, index in zip(batch, [2, 0, 1, 0]):
        assert torch.equal(sample.pred_score, singles[index].pred_score)
        assert sample.img_path == good[index]


@pytest.mark.parametrize('config, name', [(SEG_DEMO, 'text.png'), (VIDEO_DEMO, 'text.mp4')])
def test_api_names_a_file_the_segmentation_or_video_pipeline_cannot_read(config, name,
                                                                         tmp_path):
    model = init_model(osp.join(REPO, config), None)
    path = tmp_path / name
    path.write_text('not an image or a video')
    with pytest.raises(ValueError, match=f"{path} could not be read through the config's test "
                       'pipeline'):
        inference(model, str(path))


# ------------------------------------------------- an empty image in a detection data set
def test_detection_data_names_an_empty_or_undecodable_image(tmp_path):
    """The detection configs keep mmcv's LoadImageFromFile (mmdet's inferencer replaces the
    step of that name), which gave OpenCV's '!buf.empty()' without the file."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from dyt_mm.demo.det_shapes import write_det_shapes
    root = str(tmp_path)
    write_det_shapes(root, splits={'train': 2, 'val': 1})
    cfg = Config.fromfile(osp.join(REPO, 'configs/det/demo/_shapes_base.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root))
        image = dataset.get_data_info(1)['img_path']
        assert dataset[1]['inputs'].shape == (3, 128, 128)
        with open(image, 'wb'):
            pass
        with pytest.raises(ValueError, match=re.escape(f'image {image} failed in the data '
                                                       'pipeline (error: OpenCV')):
            dataset[1]
        with open(image, 'w') as f:
            f.write('not an image')
        with pytest.raises(ValueError, match=re.escape(
                f'image {image} failed in the data pipeline (AssertionError: failed to load '
                f'image: {image})')):
            dataset[1]
