"""Train a DyT model from an OpenMMLab config (classification, segmentation or video).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--force]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

A work dir that already holds checkpoints is refused unless the run resumes
(--resume) or --force is given: an earlier run's files are never replaced silently.

Multi-process: tools/dist_train.sh CONFIG N (torchrun), tools/slurm_train.sh.
Also works without GPUs: processes then talk over gloo.
"""
import argparse
import glob
import os
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.apis import collective_timeout, init_default_scope_of, prepare_distributed
from dyt_mm.engine.runner import ResumeError
from dyt_mm.utils.checkpoint import CheckpointError, CheckpointWriteError
from dyt_mm.utils.cli import config_options_action
from mmengine.config import Config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a DyT model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir '
        'when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--force', action='store_true',
                        help='train into a work dir that holds checkpoints of an earlier run '
                        '(files of the same name are replaced)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size (auto_scale_lr in the config)')
    parser.add_argument('--cfg-options', nargs='+', action=config_options_action(),
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # mim passes --device cpu / --gpus N on single-process runs; devices are chosen by torch.
    parser.add_argument('--device', help=argparse.SUPPRESS)
    parser.add_argument('--gpus', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args) -> Config:
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('error: --amp needs a GPU (mmengine\'s AmpOptimWrapper does not '
                             'train on the CPU); run without --amp here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    cfg.launcher = args.launcher
    return cfg


def check_work_dir(cfg: Config, args) -> None:
    """Never replace an earlier run's checkpoints without being told to."""
    if cfg.get('resume') or args.force:
        return
    saved = sorted(glob.glob(osp.join(glob.escape(cfg.work_dir), '*.pth')))
    if saved:
        names = ', '.join(osp.basename(p) for p in saved[:3]) + (', ...' if len(saved) > 3 else '')
        raise SystemExit(f'error: work dir {cfg.work_dir} holds checkpoints of an earlier run '
                         f'({names}); continue it with --resume, choose another --work-dir, or '
                         'give --force to train over it')


def check_resume_source(cfg: Config, args) -> None:
    """An explicit --resume that finds nothing is an error, not a silent fresh start."""
    if args.resume is None:
        return
    if args.resume != 'auto':
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: --resume {args.resume}: no such checkpoint file')
        return
    work_dir = cfg.work_dir
    if not osp.isdir(work_dir):
        found = 'the directory does not exist'
    elif osp.isfile(osp.join(work_dir, 'last_checkpoint')) or glob.glob(
            osp.join(glob.escape(work_dir), '*.pth*')):
        return  # DyTRunner resumes from it, or says why it cannot
    else:
        found = 'it holds no last_checkpoint and no checkpoint'
    raise SystemExit(f'error: --resume found nothing to continue from in the work dir '
                     f'{work_dir} ({found}). Check --work-dir (by default '
                     'work_dirs/<config name>), name the checkpoint with --resume PATH, or '
                     'leave out --resume to start a new run')


def collective_timed_out(error: RuntimeError, cfg: Config) -> str:
    """The message for a collective that ran out of time; '' for any other error."""
    if 'timed out' not in str(error).lower() or cfg.get('launcher', 'none') == 'none':
        return ''
    from mmengine.dist import get_rank
    seconds = collective_timeout(cfg).total_seconds()
    return (f'error: rank {get_rank()}: a collective operation timed out after {seconds:g} s '
            '(env_cfg.dist_cfg.timeout): another rank stopped taking part (hung, e.g. in data '
            f'loading, or died). {type(error).__name__}: {str(error).strip()[:300]}')


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg = merge_args(cfg, args)
    check_work_dir(cfg, args)
    check_resume_source(cfg, args)
    init_default_scope_of(cfg)
    prepare_distributed(cfg)

    from mmengine.registry import RUNNERS
    cfg.setdefault('runner_type', 'DyTRunner')
    runner = RUNNERS.build(cfg)
    try:
        runner.train()
    except (CheckpointError, CheckpointWriteError, ResumeError, FloatingPointError) as error:
        raise SystemExit(f'error: {error}')
    except RuntimeError as error:
        message = collective_timed_out(error, cfg)
        if not message:
            raise
        raise SystemExit(message) from error


if __name__ == '__main__':
    sys.exit(main())
