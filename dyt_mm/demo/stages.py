"""The steps the three demo scripts (tools/demo/) have in common."""
import argparse
import datetime
import os.path as osp
import sys
import time
from contextlib import contextmanager, redirect_stdout
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from ..engine import DyTRunner
from ..models.dyt.pretrained import export_backbone

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def demo_parser(doc: str, data_root: str, work_dir: str,
                with_base: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc.strip().split('\n')[0])
    parser.add_argument('--data-root', default=data_root)
    parser.add_argument('--work-dir', default=work_dir)
    if with_base:
        parser.add_argument('--base', help='use this converted ViT checkpoint as the frozen base '
                            'instead of pre-training one (must fit the demo config\'s backbone)')
    return parser


@HOOKS.register_module()
class DemoProgressHook(Hook):
    """Prints a progress line with its ETA to the terminal: after every epoch of an
    epoch-based run (``<prefix> epoch e/E, loss x, ETA h:mm:ss``), every ``interval``
    iterations of an iteration-based one (``<prefix> iteration i/N, ...``).

    The ETA is the one mmengine's ``IterTimerHook`` keeps in the message hub. The stream
    is the one ``sys.stdout`` was when the hook was built, so the lines reach the
    terminal while a run's other prints go to its log.
    """
    priority = 'VERY_LOW'  # after IterTimerHook has updated the ETA

    def __init__(self, prefix: str, interval: int = 50):
        self.prefix = prefix
        self.interval = interval
        self.stream = sys.stdout

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self._print(runner, f'iteration {runner.iter + 1}/{runner.max_iters}', window=1)

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._print(runner, f'epoch {runner.epoch + 1}/{runner.max_epochs}',
                        window=len(runner.train_dataloader))

    def _print(self, runner, step: str, window: int) -> None:
        hub = runner.message_hub
        loss = (f", loss {hub.get_scalar('train/loss').mean(window):.3f}"
                if 'train/loss' in hub.log_scalars else '')
        eta = hub.get_info('eta')
        eta = f', ETA {datetime.timedelta(seconds=round(eta))}' if eta is not None else ''
        print(f'{self.prefix} {step}{loss}{eta}', file=self.stream, flush=True)


def demo_config(config: str, data_root: str, work_dir: str, run_prefix: str = '',
                progress: Optional[str] = None) -> Config:
    """The config with its data under ``data_root`` and a fresh, timestamped work dir.

    A run never writes into an earlier run's folder. Only warnings of the
    Runner reach the terminal (and, given a ``progress`` prefix, a line per
    epoch or every 50 iterations, with the ETA); its full log is in ``<work dir>/<time>/``.
    """
    cfg = Config.fromfile(config)
    for loader in DATALOADERS:
        if cfg.get(loader):  # a stage may have no val loop
            cfg[loader].dataset.data_root = data_root
    # an evaluator that reads the annotations itself (mmdet's CocoMetric) follows the data
    for evaluator in EVALUATORS:
        ann_file = cfg[evaluator].get('ann_file') if cfg.get(evaluator) else None
        if ann_file and cfg.get('data_root') and ann_file.startswith(cfg.data_root):
            cfg[evaluator].ann_file = data_root + ann_file[len(cfg.data_root):]
    run_dir = osp.join(work_dir, run_prefix + time.strftime('%Y%m%d_%H%M%S'))
    if osp.exists(run_dir):
        raise SystemExit(f'error: {run_dir} exists; not overwriting it (try again in a second)')
    cfg.work_dir = run_dir
    if cfg.get('visualizer'):  # one instance per run: the second stage's is not the first's
        cfg.visualizer.name = run_dir
    # The terminal shows the demo's progress lines; the run's full log is in its work dir.
    cfg.console_log_level = 'WARNING'
    if progress:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='DemoProgressHook', prefix=progress)]
    return cfg


def pretrain_source(config: str, data_root: str, work_dir: str, what: str,
                    metric: str, progress: bool = False) -> str:
    """Stage 1, run once: train ``config`` on the source domain and export its ViT.

    The stand-in for a downloaded IN-21K checkpoint. Later runs reuse
    ``<work_dir>/source_vit.pth``; ``metric`` is the validation score printed;
    ``progress`` prints a line per epoch (or every 50 iterations) with its ETA.
    """
    base = osp.join(work_dir, 'source_vit.pth')
    if osp.isfile(base):
        print(f'[stage 1] reusing the pre-trained source ViT {base}')
        return base
    cfg = demo_config(config, data_root, osp.join(work_dir, 'source'),
                      progress='[stage 1]' if progress else None)
    runner = DyTRunner.from_cfg(cfg)
    print(f'[stage 1] pre-training {what} on the source domain (log: {log_file(runner)})',
          flush=True)
    with prints_to_log(runner):
        runner.train()
    score = runner.message_hub.get_scalar(f'val/{metric}').current()
    print(f'[stage 1] source-domain {metric} {score:.3f}')
    # mmengine's CheckpointHook names the file it saved last in ``last_checkpoint``
    with open(osp.join(cfg.work_dir, 'last_checkpoint')) as f:
        export_backbone(f.read().strip(), base)
    return base


def adapt(config: str, data_root: str, work_dir: str, base: Optional[str],
          what: str = 'DyT', progress: bool = False,
          cfg_options: Optional[dict] = None) -> Tuple[DyTRunner, dict]:
    """Stage 2: ``what`` on the target domain (from ``base`` when given); train, then test.
    ``cfg_options`` are merged into the config (e.g. ``{'randomness.seed': 1}``)."""
    cfg = demo_config(config, data_root, work_dir, run_prefix='target_',
                      progress='[stage 2]' if progress else None)
    cfg.merge_from_dict(cfg_options or {})
    if base is not None:
        cfg.model.backbone.init_cfg.checkpoint = base
    runner = DyTRunner.from_cfg(cfg)
    print(f'[stage 2] {what} adaptation to the target domain (log: {log_file(runner)})',
          flush=True)
    with prints_to_log(runner):
        runner.train()
    print('[stage 2] testing on the target domain', flush=True)
    with prints_to_log(runner):
        return runner, runner.test()


@contextmanager
def prints_to_log(runner: DyTRunner):
    """What libraries print during a run (pycocotools' notes and AP tables) goes to
    ``stdout.log`` beside the run's log, not to the terminal."""
    with open(osp.join(runner.log_dir, 'stdout.log'), 'a') as f, redirect_stdout(f):
        yield


def log_file(runner: DyTRunner) -> str:
    """The run's full log (mmengine writes ``<work dir>/<time>/<time>.log``), from here."""
    return osp.relpath(osp.join(runner.log_dir, f'{runner.timestamp}.log'))


def figure_at_test(runner: DyTRunner, name: str) -> float:
    """A figure DyTHook logged at test time (keep_rate, gflops, flops_ratio)."""
    return runner.message_hub.get_scalar(f'test/{name}').current()


def trainable_parameters(runner: DyTRunner) -> int:
    return sum(p.numel() for p in runner.model.parameters() if p.requires_grad)


def dispatch_rows(runner: DyTRunner, unit: str) -> List[Tuple[str, str]]:
    """Test-time keep rate against r and backbone GFLOPs per ``unit`` against the dense ViT."""
    return [
        ('mean keep rate on the test set', f"{figure_at_test(runner, 'keep_rate'):.3f} "
         f'(r = {runner.cfg.model.dyt_loss.target_rate})'),
        (f'backbone GFLOPs per {unit}', f"{figure_at_test(runner, 'gflops'):.4f} "
         f"({100 * figure_at_test(runner, 'flops_ratio'):.1f} % of the dense ViT)"),
    ]


def print_table(title: str, rows: Sequence[Tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    print(f'\n== {title} ==')
    for key, value in rows:
        print(f'{key:<{width}}  {value}')
