"""Distributed faults on two CPU processes (gloo): a rank killed with SIGKILL, and a rank
that hangs, which torchrun cannot see (issue 27)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
from helpers import REPO, save_random_base, tiny_digits_cfg


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    return save_random_base(str(tmp_path_factory.mktemp('base') / 'base.pth'))


def _config(digits_root, base_ckpt, tmp_path, fault, **options):
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'), base_ckpt, max_iters=4,
                          val_interval=4, **{'default_hooks.checkpoint.interval': 2}, **options)
    cfg.custom_imports = dict(imports=['dyt_mm.cls', 'fault_hooks'], allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='DyTHook'), dict(type='RankFaultHook', **fault)]
    path = str(tmp_path / f'cfg_{len(os.listdir(tmp_path))}.py')
    cfg.dump(path)
    return path


def _dist_train(cfg_path, port, *args, timeout=300):
    """tools/dist_train.sh CONFIG 2 ARGS; (returncode, output, seconds)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{osp.join(REPO, 'tests')}", OMP_NUM_THREADS='1',
               PYTHON=sys.executable, PORT=str(port))
    start = time.monotonic()
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg_path, '2', *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def _steps(work_dir, rank):
    with open(osp.join(work_dir, f'steps_rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_a_killed_rank_ends_the_run_and_both_ranks_resume_where_it_stopped(
        digits_root, base_ckpt, tmp_path):
    work_dir = str(tmp_path / 'work')
    # rank 1 is killed before iteration 4 (index 3): rank 0 has surely saved iter_2.pth, as
    # it wrote it before joining iteration 3's gradient all-reduce
    cfg_path = _config(digits_root, base_ckpt, tmp_path, dict(rank=1, at_iter=3, fault='kill'))
    code, log, seconds = _dist_train(cfg_path, 29651)
    assert code != 0
    # torchrun names the lost rank and its signal, and ends the surviving one
    assert re.search(r'rank\s*: 1 \(local_rank: 1\)', log), log[-3000:]
    assert 'exitcode  : -9' in log and 'SIGKILL' in log
    assert sorted(f for f in os.listdir(work_dir) if '.pth' in f) == ['iter_2.pth']
    before = [_steps(work_dir, rank) for rank in (0, 1)]

    code, log, _ = _dist_train(cfg_path, 29653, '--resume', '--cfg-options',
                               'custom_hooks.1.at_iter=-1')  # no fault this time
    assert code == 0, log[-3000:]
    after = [_steps(work_dir, rank)[len(before[rank]):] for rank in (0, 1)]
    for rank in (0, 1):
        # the resumed run starts at iteration 3 (index 2) with the LR and the samples that
        # the interrupted run had reached there, on both ranks
        assert [s['iter'] for s in after[rank]] == [2, 3]
        assert after[rank][0] == before[rank][2]
    assert set(after[0][0]['samples']).isdisjoint(after[1][0]['samples'])  # still sharded
    assert sorted(f for f in os.listdir(work_dir) if '.pth' in f) == ['iter_2.pth', 'iter_4.pth']
    print(f'killed run ended in {seconds:.0f} s')


def test_a_hung_rank_ends_the_run_at_the_collective_timeout(digits_root, base_ckpt, tmp_path):
    timeout = 10
    cfg_path = _config(digits_root, base_ckpt, tmp_path,
                       dict(rank=1, at_iter=2, fault='hang', hang_seconds=600),
                       **{'env_cfg.dist_cfg.timeout': timeout})
    code, log, seconds = _dist_train(cfg_path, 29655)
    assert code != 0
    assert (f'error: rank 0: a collective operation timed out after {timeout} s '
            '(env_cfg.dist_cfg.timeout)') in log, log[-3000:]
    assert re.search(r'rank\s*: 0 \(local_rank: 0\)', log)  # torchrun: the rank that failed
    print(f'hung run ended in {seconds:.0f} s')


@pytest.mark.parametrize('timeout', ['10', 0, -5, True])
def test_a_collective_timeout_that_is_not_a_positive_number_is_named(timeout):
    from mmengine.config import Config

    from dyt_mm.apis import collective_timeout
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=timeout))))
    with pytest.raises(ValueError, match=r'env_cfg.dist_cfg.timeout must be a number of '
                       rf'seconds > 0, got {re.escape(repr(timeout))}'):
        collective_timeout(cfg)
    cfg.env_cfg.dist_cfg.timeout = 12.5
    assert collective_timeout(cfg).total_seconds() == 12.5
