"""Real Runner training of the DyT classifier on the digits image files."""
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import REPO, run_tool, save_random_base, tiny_digits_cfg

import dyt_mm.cls  # noqa: F401
from dyt_mm.engine import DyTRunner
from dyt_mm.utils.checkpoint import load_tensors
from dyt_mm.utils.peft import load_checkpoint_strictly


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    return save_random_base(str(tmp_path_factory.mktemp('base') / 'base.pth'))


@pytest.fixture(scope='module')
def peft_run(digits_root, base_ckpt, tmp_path_factory):
    """Four iterations with adapter-only checkpoints; returns (runner, work_dir)."""
    work_dir = str(tmp_path_factory.mktemp('peft'))
    cfg = tiny_digits_cfg(digits_root, work_dir, base_ckpt)
    cfg.custom_hooks = [dict(type='DyTHook', save_trainable_only=True)]
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    return runner, work_dir


def test_training_logs_losses_and_dispatch_figures(peft_run):
    runner, _ = peft_run
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss_cls', 'train/loss_complete', 'train/loss_distill', 'train/loss_rate',
                'train/keep_rate', 'train/keep_rate_l1', 'train/gflops', 'train/tau',
                'val/accuracy/top1', 'val/keep_rate', 'val/keep_rate_l0', 'val/gflops',
                'val/flops_ratio'):
        assert key in scalars, key
    assert 0.0 <= scalars['val/keep_rate'].current() <= 1.0
    assert 0.0 < scalars['val/flops_ratio'].current() < 1.2


def test_the_focused_hooks_alone_do_what_dyt_hook_does(peft_run, digits_root, base_ckpt,
                                                       tmp_path):
    """Each concern registered on its own, listed in an order that the priorities must
    correct: EMAHook's weights are swapped into the checkpoint before it is filtered, and
    the calibration meets the configured r although a warm-up still holds r near 1."""
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt)
    cfg.custom_hooks = [dict(type='TrainableCheckpointHook'), dict(type='EMAHook'),
                        dict(type='ThresholdCalibrationHook', calibration_samples=64),
                        dict(type='DyTScheduleHook', rate_warmup_iters=100),
                        dict(type='DispatchMetricsHook')]
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    order = [type(hook).__name__ for hook in runner.hooks]
    assert order.index('DispatchMetricsHook') < order.index('ThresholdCalibrationHook') < \
        order.index('LoggerHook')
    assert order.index('EMAHook') < order.index('TrainableCheckpointHook') < \
        order.index('SafeCheckpointHook')  # DyTRunner's stand-in for mmengine's CheckpointHook

    scalars = runner.message_hub.log_scalars
    assert set(peft_run[0].message_hub.log_scalars) <= set(scalars)  # what DyTHook logs
    assert scalars['train/target_rate'].current() > 0.9  # still warming up
    r = runner.model.dyt_objective.target_rate
    assert r > 0.9 and cfg.model.dyt_loss.target_rate == 0.5
    assert scalars['train/calibration_keep_rate'].current() == pytest.approx(0.5, abs=0.01)

    checkpoint = load_tensors(osp.join(str(tmp_path), 'iter_4.pth'))
    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    assert checkpoint['meta']['dyt_trainable_only'] and trainable <= set(checkpoint['state_dict'])
    assert all(k in trainable or k.endswith('threshold_offset')
               for k in checkpoint['state_dict'])


def test_adapter_only_checkpoint_round_trip(peft_run, digits_root, base_ckpt):
    runner, work_dir = peft_run
    ckpt_path = osp.join(work_dir, 'iter_4.pth')
    state = load_tensors(ckpt_path)['state_dict']
    trained = runner.model
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    offsets = {n for n, _ in trained.named_buffers() if n.endswith('.threshold_offset')}
    assert len(offsets) == 2 and set(state) == trainable | offsets  # nothing of the frozen base
    assert all('adapters' in k or 'dispatchers' in k or k.startswith('head.') for k in state)

    from mmpretrain.registry import MODELS
    fresh = MODELS.build(tiny_digits_cfg(digits_root, work_dir, base_ckpt).model)
    load_checkpoint_strictly(fresh, ckpt_path)
    x = torch.randn(5, 3, 32, 32)
    trained.eval(), fresh.eval()
    with torch.no_grad():
        expected = trained(x, mode='tensor')
        got = fresh(x, mode='tensor')
    assert torch.equal(expected, got)


def test_adapter_only_checkpoint_needs_the_base(peft_run, digits_root, tmp_path):
    _, work_dir = peft_run
    from mmpretrain.registry import MODELS
    no_base = MODELS.build(tiny_digits_cfg(digits_root, str(tmp_path)).model)
    with pytest.raises(ValueError, match='holds only the trainable DyT parameters'):
        load_checkpoint_strictly(no_base, osp.join(work_dir, 'iter_4.pth'))


def test_tools_test_on_adapter_only_checkpoint(peft_run, digits_root, base_ckpt, tmp_path):
    _, work_dir = peft_run
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt, log_level='INFO')
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    out = str(tmp_path / 'preds.pkl')
    proc = run_tool('tools/test.py', cfg_path, osp.join(work_dir, 'iter_4.pth'), '--out', out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'accuracy/top1' in log and 'keep_rate' in log and 'gflops' in log
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 180  # every val image predicted
    again = run_tool('tools/test.py', cfg_path, osp.join(work_dir, 'iter_4.pth'), '--out', out)
    assert again.returncode != 0 and 'not replacing it without --force' in again.stderr


def test_two_process_test_predicts_what_one_process_does(peft_run, digits_root, base_ckpt,
                                                         tmp_path):
    _, work_dir = peft_run
    cfg_path = _dump(tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt), tmp_path)
    ckpt = osp.join(work_dir, 'iter_4.pth')
    single, double = str(tmp_path / 'one.pkl'), str(tmp_path / 'two.pkl')
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--out', single)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(os.environ, PYTHON=sys.executable, PORT='29641', OMP_NUM_THREADS='1',
               PYTHONPATH=REPO)
    proc = subprocess.run(['bash', 'tools/dist_test.sh', cfg_path, ckpt, '2', '--out', double],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(single, 'rb') as f1, open(double, 'rb') as f2:
        one, two = pickle.load(f1), pickle.load(f2)
    assert len(one) == len(two) == 180  # no sample lost or counted twice across ranks
    for a, b in zip(one, two):
        assert a['img_path'] == b['img_path']
        assert torch.equal(a['pred_label'], b['pred_label'])
        assert torch.allclose(a['pred_score'], b['pred_score'], atol=1e-6)


def test_training_never_replaces_an_earlier_runs_checkpoints(peft_run, digits_root, base_ckpt,
                                                             tmp_path):
    _, work_dir = peft_run
    saved = {name: os.path.getmtime(osp.join(work_dir, name))
             for name in os.listdir(work_dir) if name.endswith('.pth')}
    assert saved
    cfg_path = _dump(tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt), tmp_path)
    proc = run_tool('tools/train.py', cfg_path, '--work-dir', work_dir)
    assert proc.returncode != 0
    assert f'work dir {work_dir} holds checkpoints of an earlier run' in proc.stderr
    assert 'iter_4.pth' in proc.stderr and '--resume' in proc.stderr and '--force' in proc.stderr
    assert saved == {name: os.path.getmtime(osp.join(work_dir, name)) for name in saved}
    # --force is the explicit way to train over them
    forced = run_tool('tools/train.py', cfg_path, '--work-dir', str(tmp_path / 'copy'))
    assert forced.returncode == 0, forced.stderr[-3000:]
    again = run_tool('tools/train.py', cfg_path, '--work-dir', str(tmp_path / 'copy'), '--force')
    assert again.returncode == 0, again.stderr[-3000:]


def test_resume_continues_with_optimizer_and_scheduler_state(digits_root, base_ckpt, tmp_path):
    options = {'default_hooks.checkpoint.interval': 2}
    full = DyTRunner.from_cfg(tiny_digits_cfg(digits_root, str(tmp_path / 'full'), base_ckpt,
                                              **options))
    full.train()
    lr_full = full.message_hub.log_scalars['train/lr'].data[0]

    resumed_dir = str(tmp_path / 'resumed')
    os.makedirs(resumed_dir)
    shutil.copy(str(tmp_path / 'full' / 'iter_2.pth'), resumed_dir)
    proc = run_tool('tools/train.py', _dump(tiny_digits_cfg(
        digits_root, resumed_dir, base_ckpt, **options), tmp_path),
        '--resume', osp.join(resumed_dir, 'iter_2.pth'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = torch.load(osp.join(resumed_dir, 'iter_4.pth'), weights_only=False)
    assert final['meta']['iter'] == 4
    steps = {int(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {4}  # Adam's step count went on from 2, not from 0
    lrs = final['message_hub']['log_scalars']['train/lr'].data[0]
    # iterations 1-2 come from the first run, 3-4 from the resumed one: same schedule
    assert len(lrs) == 4
    torch.testing.assert_close(torch.tensor(lrs), torch.tensor(lr_full))


def _dump(cfg, tmp_path):
    path = str(tmp_path / f'cfg_{len(os.listdir(tmp_path))}.py')
    cfg.dump(path)
    return path


def test_two_process_cpu_training_keeps_ranks_identical(digits_root, base_ckpt, tmp_path):
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'), base_ckpt, max_iters=3,
                          val_interval=3)
    cfg.custom_imports = dict(imports=['dyt_mm.cls', 'rank_weights_hook'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='DyTHook'), dict(type='SaveRankWeightsHook')]
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{osp.join(REPO, 'tests')}", OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', _dump(cfg, tmp_path), '2'], cwd=REPO, env=dict(
            env, PYTHON=sys.executable, PORT='29631'), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(str(tmp_path / 'work' / 'rank0.pth'), weights_only=True)
    rank1 = torch.load(str(tmp_path / 'work' / 'rank1.pth'), weights_only=True)
    initial = torch.load(base_ckpt, weights_only=True)['state_dict']
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # and they trained: the adapters moved away from their zero initialisation
    assert rank0['backbone.vit.blocks.0.adapters.mlp.up.weight'].abs().sum() > 0
    assert torch.equal(rank0['backbone.vit.blocks.0.attn.qkv.weight'],
                       initial['blocks.0.attn.qkv.weight'])  # the base stays frozen


# A stand-in for slurm on one machine: srun starts --ntasks copies of the command with the
# variables slurm gives each task; scontrol resolves the node list to this host.
FAKE_SRUN = r"""#!/usr/bin/env bash
echo "srun $*" >> "$(dirname "$0")/srun.log"
n=1
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        -p) shift ;;
        --ntasks=*) n=${1#--ntasks=} ;;
    esac
    shift
done
pids=()
for ((i = 0; i < n; i++)); do
    SLURM_PROCID=$i SLURM_NTASKS=$n SLURM_LOCALID=$i SLURM_NODELIST=node0 "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
echo 127.0.0.1
"""


def test_slurm_train_script_runs_one_task_per_rank(digits_root, base_ckpt, tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    cfg = tiny_digits_cfg(digits_root, '', base_ckpt, max_iters=2, val_interval=2)
    cfg.custom_imports = dict(imports=['dyt_mm.cls', 'rank_weights_hook'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='DyTHook'), dict(type='SaveRankWeightsHook')]
    work = tmp_path / 'work'
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=sys.executable,
               PYTHONPATH=f"{REPO}:{osp.join(REPO, 'tests')}", OMP_NUM_THREADS='1', GPUS='2',
               GPUS_PER_NODE='2', MASTER_PORT='29637')
    proc = subprocess.run(['bash', 'tools/slurm_train.sh', 'cpu', 'dyt-test', _dump(cfg, tmp_path),
                           str(work)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    srun_call = (bin_dir / 'srun.log').read_text()
    assert '-p cpu --job-name=dyt-test' in srun_call and '--ntasks=2' in srun_call
    assert '--launcher slurm' in srun_call and f'--work-dir={work}' in srun_call
    rank0 = torch.load(str(work / 'rank0.pth'), weights_only=True)
    rank1 = torch.load(str(work / 'rank1.pth'), weights_only=True)
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)
    assert rank0['backbone.vit.blocks.0.adapters.mlp.up.weight'].abs().sum() > 0


def test_mim_train_runs_this_package(digits_root, base_ckpt, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    cfg_path = _dump(tiny_digits_cfg(digits_root, str(tmp_path / 'work'), base_ckpt,
                                     max_iters=2, val_interval=2), tmp_path)
    proc = subprocess.run([mim, 'train', 'dyt_mm', cfg_path, '--work-dir',
                           str(tmp_path / 'work')], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert osp.isfile(str(tmp_path / 'work' / 'iter_2.pth'))


@pytest.mark.parametrize('args, message', [
    (['tools/train.py', 'configs/no/such.py'], 'config not found: configs/no/such.py'),
    (['tools/test.py', 'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py', 'missing.pth'],
     'checkpoint not found: missing.pth'),
])
def test_tools_reject_bad_paths(args, message):
    proc = run_tool(*args)
    assert proc.returncode != 0 and message in proc.stderr


def test_amp_on_a_machine_without_gpu_is_a_clear_error(digits_root, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    proc = run_tool('tools/train.py', _dump(tiny_digits_cfg(digits_root, str(tmp_path)),
                                            tmp_path), '--amp')
    assert proc.returncode != 0 and '--amp needs a GPU' in proc.stderr
