"""Test-only hooks for the distributed fault tests: each rank records what it trains on, and
one rank can be made to die (SIGKILL) or hang at a chosen iteration."""
import json
import os
import os.path as osp
import signal
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankFaultHook(Hook):
    """Appends ``{iter, lr, samples}`` to ``<work_dir>/steps_rank<R>.jsonl`` before every
    iteration, then, on rank ``rank`` at iteration ``at_iter`` (0-based), ``fault``s:
    'kill' (SIGKILL, as ``kill -9``), 'hang' (sleeps, as a rank stuck in data loading)."""

    def __init__(self, rank: int = 1, at_iter: int = -1, fault: str = 'kill',
                 hang_seconds: float = 600):
        self.rank, self.at_iter, self.fault, self.hang_seconds = rank, at_iter, fault, hang_seconds

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        samples = [osp.basename(s.img_path) for s in data_batch['data_samples']]
        record = dict(iter=runner.iter, lr=runner.optim_wrapper.get_lr()['lr'][0],
                      samples=samples)
        with open(osp.join(runner.work_dir, f'steps_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')
        if get_rank() == self.rank and runner.iter == self.at_iter:
            if self.fault == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(self.hang_seconds)
