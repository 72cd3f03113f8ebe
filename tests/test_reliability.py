"""Bad input on purpose: wrong checkpoints, NaNs, crafted pickles, kills mid-write.

Each test reproduces a failure that once passed silently (issue 10) and checks
the clear error or the safe outcome that replaced it.
"""
import importlib.util
import json
import os
import os.path as osp
import pickle
import shutil
import signal

import numpy as np
import pytest
import torch
from helpers import REPO, run_tool, save_random_base, tiny_digits_cfg

import dyt_mm.cls  # noqa: F401
from dyt_mm import DyTViT
from dyt_mm.engine import DyTRunner
from dyt_mm.engine.runner import ResumeError
from dyt_mm.utils.checkpoint import CheckpointError, load_tensors, load_training_state


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    return save_random_base(str(tmp_path_factory.mktemp('base') / 'base.pth'))


@pytest.fixture(scope='module')
def run(digits_root, base_ckpt, tmp_path_factory):
    """Four iterations with full checkpoints at 2 and 4; (work_dir, config path)."""
    work_dir = str(tmp_path_factory.mktemp('run'))
    cfg = tiny_digits_cfg(digits_root, work_dir, base_ckpt, val_interval=2)
    cfg.custom_hooks = [dict(type='DyTHook')]
    DyTRunner.from_cfg(cfg).train()
    cfg_path = osp.join(work_dir, osp.basename(cfg.filename))
    assert osp.isfile(cfg_path)  # the training run's own copy of its config
    return work_dir, cfg_path


def _cfg(digits_root, base_ckpt, work_dir, **options):
    cfg = tiny_digits_cfg(digits_root, str(work_dir), base_ckpt, **options)
    cfg.custom_hooks = [dict(type='DyTHook')]
    return cfg


def _payload(marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    return Payload()


@pytest.fixture
def crafted(run, tmp_path):
    """A real full checkpoint of the run with a code-running object planted in its meta."""
    marker = tmp_path / 'pwned'
    checkpoint = torch.load(osp.join(run[0], 'iter_4.pth'), weights_only=False)
    checkpoint['meta']['note'] = _payload(marker)
    path = str(tmp_path / 'crafted.pth')
    torch.save(checkpoint, path)
    return path, marker


# -------------------------------------------------- 1. checkpoints that fit nothing
def _foreign_checkpoints(tmp_path, base_ckpt):
    small = DyTViT(arch=dict(embed_dims=96, depth=2, num_heads=3), img_size=32, patch_size=8)
    torch.save(small.state_dict(), tmp_path / 'vit_s.pth')  # a timm-style bare state dict
    torch.save({'state_dict': {}}, tmp_path / 'empty.pth')
    return {'another ViT': str(tmp_path / 'vit_s.pth'), 'empty state dict':
            str(tmp_path / 'empty.pth'), 'backbone-only base': base_ckpt}


def test_test_and_load_from_refuse_a_checkpoint_that_does_not_fit(digits_root, base_ckpt,
                                                                  tmp_path):
    for kind, path in _foreign_checkpoints(tmp_path, base_ckpt).items():
        runner = DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, tmp_path / kind))
        with pytest.raises(CheckpointError, match='does not fit the model of this config'):
            runner.load_checkpoint(path)

    cfg = _cfg(digits_root, base_ckpt, tmp_path / 'cli')
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/test.py', cfg_path, str(tmp_path / 'empty.pth'))
    assert proc.returncode != 0 and 'accuracy' not in proc.stdout + proc.stderr
    assert 'error: checkpoint ' in proc.stderr and 'Traceback' not in proc.stderr
    assert 'empty.pth does not fit the model of this config: 44 missing key(s)' in proc.stderr
    proc = run_tool('tools/train.py', cfg_path, '--cfg-options',
                    f'load_from={tmp_path / "vit_s.pth"}')
    assert proc.returncode != 0
    assert 'mis-shaped key(s): backbone.vit.cls_token: checkpoint (1, 1, 96) vs model ' \
           '(1, 1, 64)' in proc.stderr or 'unexpected key(s)' in proc.stderr
    assert not [f for f in os.listdir(tmp_path / 'cli') if f.endswith('.pth')]


def test_a_checkpoint_with_nan_weights_is_not_loaded(run, digits_root, base_ckpt, tmp_path):
    checkpoint = torch.load(osp.join(run[0], 'iter_4.pth'), weights_only=False)
    checkpoint['state_dict']['head.fc.weight'][0, 0] = float('nan')
    path = str(tmp_path / 'nan.pth')
    torch.save(checkpoint, path)
    runner = DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, tmp_path / 'w'))
    with pytest.raises(CheckpointError, match=r'NaN or inf in 1 tensor\(s\): head.fc.weight'):
        runner.load_checkpoint(path)


# ------------------------------------------------------------- 2. NaN training
def test_a_non_finite_loss_stops_training_before_it_reaches_the_weights(digits_root, base_ckpt,
                                                                         tmp_path):
    cfg = _cfg(digits_root, base_ckpt, tmp_path, max_iters=6, val_interval=2,
               **{'optim_wrapper.optimizer.lr': 1e30})
    runner = DyTRunner.from_cfg(cfg)
    with pytest.raises(FloatingPointError,
                       match=r'non-finite loss at iteration 2: loss_cls=nan.*loss_rate=nan'):
        runner.train()
    # the weights are those after iteration 1 (finite), and nothing was saved
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert not [f for f in os.listdir(tmp_path) if '.pth' in f]


def test_a_nan_pixel_names_the_iteration_and_every_term(digits_root, base_ckpt, tmp_path):
    # a NaN in the normalisation reaches every input, like a NaN pixel reaches its image
    cfg = _cfg(digits_root, base_ckpt, tmp_path,
               **{'model.data_preprocessor.mean': [float('nan'), 127.5, 127.5]})
    with pytest.raises(FloatingPointError, match='non-finite loss at iteration 1: loss_cls=nan'):
        DyTRunner.from_cfg(cfg).train()


def test_weights_that_diverged_are_never_saved(digits_root, base_ckpt, tmp_path):
    runner = DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, tmp_path))
    with torch.no_grad():
        runner.model.backbone.vit.blocks[0].adapters['mlp'].up.weight[0, 0] = float('inf')
    with pytest.raises(FloatingPointError, match=r'not saving iter_9.pth: the weights hold NaN '
                       r'or inf in 1 parameter\(s\) \(backbone.vit.blocks.0.adapters.mlp.up'):
        runner.save_checkpoint(str(tmp_path), 'iter_9.pth')
    assert not [f for f in os.listdir(tmp_path) if '.pth' in f]


# ------------------------------------------------ 3. testing leaves a run's files alone
def test_testing_a_run_changes_none_of_its_files(run, tmp_path):
    work_dir, cfg_path = run
    ckpt = osp.join(work_dir, 'iter_4.pth')
    config_before = open(cfg_path).read()
    out = str(tmp_path / 'preds.pkl')
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--work-dir', work_dir, '--out', out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert open(cfg_path).read() == config_before  # no load_from, no DumpResults added
    preds = open(out, 'rb').read()

    # the same config again: no results file is written behind the user's back ...
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--work-dir', work_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert open(out, 'rb').read() == preds
    # ... and an existing one is replaced only with --force
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--out', out)
    assert proc.returncode != 0 and f'results file {out} exists' in proc.stderr
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--out', out, '--force')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(pickle.load(open(out, 'rb'))) == 180


# ------------------------------------------------------ 4. crafted pickles never run
def test_crafted_checkpoint_runs_no_code_on_any_load_path(crafted, run, digits_root, base_ckpt,
                                                         tmp_path):
    path, marker = crafted
    # test / load_from: the tensors are read (they fit), the object stays inert
    runner = DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, tmp_path / 'load'))
    runner.load_checkpoint(path)
    # mmengine's own loader (get_model, inferencers, init_cfg of toolbox modules)
    from mmengine.runner.checkpoint import _load_checkpoint
    assert 'state_dict' in _load_checkpoint(path)
    # the backbone's init_cfg and the converter read weights through the same unpickler
    from dyt_mm.utils.checkpoint import read_weights
    read_weights(path)
    # analysis tools
    proc = run_tool('tools/analysis/get_flops.py', run[1], '--checkpoint', path,
                    '--num-samples', '2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    # resume: refused, whether named or planted as the target of last_checkpoint
    fresh = tmp_path / 'fresh'
    with pytest.raises(CheckpointError, match=r'holds an object of type posix.system, .*refusing to unpickle it'):
        DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, fresh, resume=True,
                                load_from=path)).train()
    planted = tmp_path / 'planted'
    planted.mkdir()
    (planted / 'last_checkpoint').write_text(path)
    with pytest.raises(CheckpointError, match='refusing to unpickle it'):
        DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, planted, resume=True)).train()
    assert not marker.exists()


def test_resume_reads_every_type_a_training_checkpoint_holds(run):
    checkpoint = load_training_state(osp.join(run[0], 'iter_4.pth'))
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert type(buffer).__name__ == 'HistoryBuffer' and len(buffer.data[0]) == 4
    assert buffer.statistics('mean') == pytest.approx(float(np.mean(buffer.data[0])))
    assert checkpoint['optimizer']['state'] and checkpoint['param_schedulers']


def test_getattr_in_a_checkpoint_reaches_nothing_but_history_buffer_statistics(tmp_path):
    from mmengine.logging import HistoryBuffer

    class Getattr:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return (getattr, (HistoryBuffer, self.name))

    path = str(tmp_path / 'x.pth')
    torch.save({'ok': Getattr('mean'), 'bad': Getattr('__init__')}, path)
    with pytest.raises(CheckpointError, match=r"holds a call getattr\(HistoryBuffer, '__init__'\)"):
        load_training_state(path)
    loaded = load_tensors(path)
    assert loaded['ok'] is HistoryBuffer.mean
    assert type(loaded['bad']).__name__ == 'Omitted'


# ------------------------------------------------------- 5. kill -9 during a save
# Runs tools/train.py with a SIGKILL at the first write of iter_4 (half of its bytes on disk)
# or at the first removal of an old checkpoint (after iter_4 is complete).
KILL_DRIVER = '''
import os, runpy, signal, sys
from mmengine.fileio.backends import LocalBackend
real_put = LocalBackend.put
def put(self, obj, filepath):
    if 'iter_4' in str(filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_put(self, obj, filepath)
def remove(self, filepath):
    os.kill(os.getpid(), signal.SIGKILL)
where = sys.argv.pop(1)  # 'put' or 'remove'
setattr(LocalBackend, where, {'put': put, 'remove': remove}[where])
sys.argv = ['tools/train.py', *sys.argv[1:]]
runpy.run_path('tools/train.py', run_name='__main__')
'''


def _checkpoints(work_dir):
    return sorted(f for f in os.listdir(work_dir) if '.pth' in f)


def killed_run(cfg, tmp_path, where: str) -> str:
    """Train ``cfg`` under KILL_DRIVER, which SIGKILLs the run at ``where`` ('put': while
    a checkpoint is written; 'remove': before an old one is removed); returns the dumped
    config's path for the resume."""
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    driver = tmp_path / 'kill_driver.py'
    driver.write_text(KILL_DRIVER)
    proc = run_tool(str(driver), where, cfg_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    return cfg_path


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(digits_root, base_ckpt,
                                                                  tmp_path):
    # max_keep_ckpts=1 (the VTAB-1K configs): mmengine would remove iter_2 before writing iter_4
    work_dir = tmp_path / 'work'
    cfg = _cfg(digits_root, base_ckpt, work_dir, val_interval=2,
               **{'default_hooks.checkpoint.max_keep_ckpts': 1})
    cfg_path = killed_run(cfg, tmp_path, 'put')
    assert _checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth.partial']  # torn, unpublished
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_2.pth')
    assert load_training_state(str(work_dir / 'iter_2.pth'))['meta']['iter'] == 2

    proc = run_tool('tools/train.py', cfg_path, '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = load_training_state(str(work_dir / 'iter_4.pth'))
    assert final['meta']['iter'] == 4
    assert {int(s['step']) for s in final['optimizer']['state'].values()} == {4}
    assert _checkpoints(work_dir) == ['iter_4.pth']


def test_a_kill_before_an_old_checkpoint_is_removed_keeps_both_until_resumed(
        digits_root, base_ckpt, tmp_path):
    work_dir = tmp_path / 'work'
    cfg = _cfg(digits_root, base_ckpt, work_dir, max_iters=6, val_interval=2,
               **{'default_hooks.checkpoint.max_keep_ckpts': 1})
    cfg_path = killed_run(cfg, tmp_path, 'remove')
    # iter_4 was complete and named by last_checkpoint before iter_2 was to be removed
    assert _checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth']
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_4.pth')

    proc = run_tool('tools/train.py', cfg_path, '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _checkpoints(work_dir) == ['iter_6.pth']  # the leftover iter_2 went too
    assert load_training_state(str(work_dir / 'iter_6.pth'))['meta']['iter'] == 6


@pytest.mark.skipif(not osp.exists('/dev/full'), reason='needs /dev/full (Linux)')
def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(digits_root, base_ckpt,
                                                                      tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    # Every write into iter_4's file fails as on a full file system: the kernel's /dev/full
    # answers each write with ENOSPC.
    os.symlink('/dev/full', work_dir / 'iter_4.pth.partial')
    options = {'default_hooks.checkpoint.max_keep_ckpts': 1}
    cfg = _cfg(digits_root, base_ckpt, work_dir, val_interval=2, **options)
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path)
    assert proc.returncode == 1
    assert (f'error: [Errno 28] could not write {work_dir}/iter_4.pth: the file system is full '
            '(No space left on device). Nothing was replaced') in proc.stderr
    assert 'continue with --resume' in proc.stderr and 'Traceback' not in proc.stderr
    # the previous checkpoint is intact and named; no partial file is left to be taken for one
    assert _checkpoints(work_dir) == ['iter_2.pth']
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'iter_2.pth')

    runner = DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, work_dir, val_interval=2,
                                     resume=True, **options))
    runner.train()
    assert runner.iter == 4
    assert _checkpoints(work_dir) == ['iter_4.pth']
    assert load_training_state(str(work_dir / 'iter_4.pth'))['meta']['iter'] == 4


def _tool(name):
    """tools/NAME.py as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_explicit_resume_that_finds_nothing_is_an_error(digits_root, base_ckpt, tmp_path):
    train = _tool('train')
    cfg_path = str(tmp_path / 'cfg.py')
    _cfg(digits_root, base_ckpt, tmp_path / 'unused').dump(cfg_path)
    work_dir = tmp_path / 'work_dirs' / 'typo'
    for found in ('the directory does not exist', 'it holds no last_checkpoint and no checkpoint'):
        with pytest.raises(SystemExit) as info:
            train.main([cfg_path, '--resume', '--work-dir', str(work_dir)])
        assert str(info.value).startswith(
            f'error: --resume found nothing to continue from in the work dir {work_dir} '
            f'({found}). Check --work-dir')
        work_dir.mkdir(parents=True, exist_ok=True)
    assert not os.listdir(work_dir)  # nothing trained, nothing written
    with pytest.raises(SystemExit, match=f'error: --resume {work_dir}/iter_2.pth: no such '
                       'checkpoint file'):
        train.main([cfg_path, '--resume', str(work_dir / 'iter_2.pth')])


def test_resume_that_finds_nothing_to_resume_among_checkpoints_is_an_error(
        run, digits_root, base_ckpt, tmp_path):
    orphans = tmp_path / 'orphans'
    orphans.mkdir()
    shutil.copy(osp.join(run[0], 'iter_2.pth'), orphans)
    (orphans / 'iter_4.pth.partial').write_bytes(b'torn')
    with pytest.raises(ResumeError, match=r'no last_checkpoint but holds checkpoint files '
                       r'\(iter_2.pth, iter_4.pth.partial\); pass the one to continue from'):
        DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, orphans, resume=True)).train()
    (orphans / 'last_checkpoint').write_text(str(orphans / 'iter_6.pth'))
    with pytest.raises(ResumeError, match='names .*iter_6.pth, which does not exist'):
        DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, orphans, resume=True)).train()


# ------------------------------------------------------------- 6. clear errors
@pytest.mark.parametrize('content,reason', [
    (b'', 'the file is empty'),
    (b'plain text, not a checkpoint\n' * 100, 'neither a torch zip archive nor a pickle'),
    (bytes(range(256)) * 16, 'neither a torch zip archive nor a pickle'),
    ('truncated', 'its zip archive is truncated or damaged'),
])
def test_a_file_that_is_not_a_checkpoint_is_named(run, tmp_path, content, reason):
    path = str(tmp_path / 'bad.pth')
    if content == 'truncated':
        content = open(osp.join(run[0], 'iter_2.pth'), 'rb').read()[:50000]
    open(path, 'wb').write(content)
    for read in (load_tensors, load_training_state):
        with pytest.raises(CheckpointError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(f'{path} is not a valid checkpoint file') and reason in message
        assert 'weights_only' not in message and 'unsafe' not in message


@pytest.mark.parametrize('suffix', ['.npz', '.safetensors'])
def test_converter_names_a_weight_file_that_is_not_one(tmp_path, suffix):
    src = tmp_path / f'random{suffix}'
    src.write_bytes(bytes(range(255, -1, -1)) * 8)  # fixed non-weight bytes
    proc = run_tool('tools/convert/timm_vit_to_dyt.py', str(src), str(tmp_path / 'out.pth'))
    assert proc.returncode != 0
    assert f'{src} is not a valid {suffix} weight file' in proc.stderr
    assert 'unsafely' not in proc.stderr and 'Traceback' not in proc.stderr


def test_converter_refuses_to_write_over_its_source(tmp_path):
    src = save_random_base(str(tmp_path / 'base.pth'))
    before = open(src, 'rb').read()
    arch = 'embed_dims=64,depth=2,num_heads=2'
    proc = run_tool('tools/convert/timm_vit_to_dyt.py', src, src, '--force', '--arch', arch,
                    '--patch-size', '8', '--img-size', '32')
    assert proc.returncode != 0 and 'SRC and DST are the same file' in proc.stderr
    assert open(src, 'rb').read() == before


def test_a_zero_byte_image_is_named(digits_root, tmp_path):
    from mmpretrain.datasets import CustomDataset
    root = tmp_path / 'images'
    shutil.copytree(osp.join(digits_root, 'target/val/3'), root / '3')
    broken = root / '3' / sorted(os.listdir(root / '3'))[0]
    broken.write_bytes(b'')
    dataset = CustomDataset(data_root=str(root), pipeline=[dict(type='LoadCheckedImage')])
    index = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))].index(str(broken))
    with pytest.raises(ValueError, match=f'image file {broken} is empty'):
        dataset[index]
    broken.write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match=f'image file {broken} could not be decoded'):
        dataset[index]


def test_a_label_outside_the_classes_names_its_image(digits_root, base_ckpt, tmp_path):
    folder = osp.join(digits_root, 'target/train/4')
    images = sorted(os.listdir(folder))[:20]
    ann = tmp_path / 'train.txt'
    ann.write_text(''.join(f'{name} {12 if i == 3 else 4}\n' for i, name in enumerate(images)))
    cfg = _cfg(digits_root, base_ckpt, tmp_path / 'work', max_iters=2, val_interval=2)
    cfg.train_dataloader.dataset = dict(
        type='CustomDataset', data_root=folder, ann_file=str(ann), data_prefix='',
        classes=[str(i) for i in range(13)], pipeline=cfg.train_dataloader.dataset.pipeline)
    with pytest.raises(ValueError, match=f'label 12 of {osp.join(folder, images[3])} is outside '
                       r'the 10 classes of the head \(0..9\)'):
        DyTRunner.from_cfg(cfg).train()


# ---------------------------------------------------------------- 7. smaller ones
def test_get_flops_says_how_many_samples_it_used(run):
    proc = run_tool('tools/analysis/get_flops.py', run[1], '--checkpoint',
                    osp.join(run[0], 'iter_4.pth'), '--num-samples', '100000')
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report['num_inputs'] == 180
    assert report['inputs'] == ("180 samples of the config's test data (all it holds; 100000 "
                                'were asked for)')


def test_benchmark_checks_its_arguments_before_reading_anything():
    for flag, value, message in (('--batch-size', '0', 'must be >= 1, got 0'),
                                 ('--calibrate-rate', '1.5', 'must lie in (0, 1], got 1.5'),
                                 ('--warmup', 'x', "'x' is not an integer")):
        proc = run_tool('tools/analysis/benchmark.py', 'configs/no/such.py', flag, value)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert 'config file not found' not in proc.stderr


@pytest.mark.parametrize('config', [
    'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py',
    'configs/demo/vit-tiny-p4_digits-source.py',
    'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py',
    'configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py',
])
def test_demo_configs_save_along_the_way_and_keep_the_last_two(config):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    hook = cfg.default_hooks.checkpoint
    loop = cfg.train_cfg
    length = loop.get('max_epochs') or loop.get('max_iters')
    assert 0 < hook.interval < length and hook.max_keep_ckpts == 2



# ------------------------------------------------ 8. config errors a user makes (issue 27)
@pytest.mark.parametrize('options,error,message', [
    ({'model.dyt_loss.target_rate': 1.5}, ValueError,
     r'target keep rate r must lie in \(0, 1\], got 1.5'),
    ({'model.dyt_loss.target_rate': '0.5'}, TypeError,
     r"dyt_loss target_rate must be a number, got '0.5' \(a str\); write it without quotes"),
    ({'model.dyt_loss.rate_weight': None}, TypeError,
     r'dyt_loss rate_weight must be a number, got None'),
    ({'model.dyt_loss.target_rat': 0.5}, TypeError, "unexpected keyword argument 'target_rat'"),
    ({'model.backbone.bottlenek': 8}, TypeError, "unexpected keyword argument 'bottlenek'"),
    ({'model.backbone.dispatch': dict(type='Nope')}, ValueError,
     r"unknown dispatch type 'Nope'; dyt-mm registers TokenDispatcher"),
])
def test_a_config_error_is_named_when_the_runner_is_built(digits_root, base_ckpt, tmp_path,
                                                          options, error, message):
    with pytest.raises(error, match=message):  # building, before any data is read
        DyTRunner.from_cfg(_cfg(digits_root, base_ckpt, tmp_path, **options))


def test_a_dict_in_cfg_options_says_how_to_write_it(digits_root, base_ckpt, tmp_path, capsys):
    cfg_path = str(tmp_path / 'cfg.py')
    _cfg(digits_root, base_ckpt, tmp_path / 'work').dump(cfg_path)
    option = "custom_hooks=[dict(type='DyTHook', tau=0)]"
    for tool, args in (('train', [cfg_path]), ('test', [cfg_path, 'x.pth'])):
        with pytest.raises(SystemExit) as info:
            _tool(tool).parse_args([*args, '--cfg-options', option])
        assert info.value.code == 2  # a usage error, not mmengine's RecursionError
        err = capsys.readouterr().err
        assert f'--cfg-options: cannot read "{option}"' in err
        assert 'Here: custom_hooks.0.type=DyTHook custom_hooks.0.tau=0' in err
    # written as suggested, the value reaches the hook, which names it
    args = _tool('train').parse_args([cfg_path, '--cfg-options', 'custom_hooks.0.tau=0'])
    assert args.cfg_options == {'custom_hooks.0.tau': 0}
    with pytest.raises(SystemExit):
        _tool('train').parse_args([cfg_path, '--cfg-options', 'custom_hooks'])
    assert "--cfg-options: 'custom_hooks' is not KEY=VALUE" in capsys.readouterr().err


@pytest.mark.skipif(not osp.exists('/dev/full'), reason='needs /dev/full (Linux)')
def test_the_previous_best_checkpoint_stays_until_the_new_one_is_written(digits_root, base_ckpt,
                                                                         tmp_path):
    from dyt_mm.engine.checkpoint_hook import SafeCheckpointHook
    cfg = _cfg(digits_root, base_ckpt, tmp_path, **{
        'default_hooks.checkpoint.save_best': 'accuracy/top1',
        'default_hooks.checkpoint.max_keep_ckpts': 1})
    runner = DyTRunner.from_cfg(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    hook.before_train(runner)

    def best_files():
        return sorted(f for f in os.listdir(tmp_path) if f.startswith('best'))

    for step, accuracy in ((0, 50.0), (1, 60.0)):  # a better score replaces the best file
        runner.train_loop._iter = step
        hook._save_best_checkpoint(runner, {'accuracy/top1': accuracy})
        assert best_files() == [f'best_accuracy_top1_iter_{step}.pth']
    runner.train_loop._iter = 2
    os.symlink('/dev/full', tmp_path / 'best_accuracy_top1_iter_2.pth.partial')  # disk full
    with pytest.raises(OSError, match='could not write .*best_accuracy_top1_iter_2.pth: the file '
                       'system is full'):
        hook._save_best_checkpoint(runner, {'accuracy/top1': 70.0})
    # mmengine removes the previous best before writing the new one
    assert best_files() == ['best_accuracy_top1_iter_1.pth']
    assert load_tensors(str(tmp_path / 'best_accuracy_top1_iter_1.pth'))['meta']['iter'] == 1
