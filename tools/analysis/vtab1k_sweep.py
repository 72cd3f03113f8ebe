"""Train and test one method family on VTAB-1K (all 19 tasks or some) over seeds, and print
the paper's Table-3 row.

    python tools/analysis/vtab1k_sweep.py FAMILY [--tasks TASK ...] [--seeds S ...]
        [--work-dir DIR] [--backbone vit-b16-in21k] [--override-config FILE]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm] [--gpus N]
        [--partition P]

FAMILY is a config prefix of configs/vtab1k/: dyt-r0.5, dyt-r0.7, dyt-r0.9,
adaptformer-d8, lora-r8, vpt-deep, full, linear-probe. Each (task, seed) trains
in DIR/<task>/seed<k> (default DIR: work_dirs/vtab1k_<family>) in this process,
or through tools/dist_train.sh (--launcher pytorch, --gpus processes) or
tools/slurm_train.sh (--launcher slurm --partition P, GPUS=--gpus), then its
test split is evaluated here. Finished runs (result.json) are skipped; a
killed run resumes from its last checkpoint: run the same command again.

--override-config FILE is a config merged into every task config (after it,
before --cfg-options): another data root, pre-trained checkpoint or schedule.

Printed and written to DIR/table3_row.{md,csv} (and every run in DIR/runs.csv):
the 19 top-1 accuracies, the Natural / Specialized / Structured means, their
mean (the paper's "Mean": the mean of the three group means), the trainable
ViT parameters (M, head excluded) and GFLOPs per test image, averaged over the
tasks; with several seeds, mean ± sample std.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis.vtab1k_sweep import FAMILIES, LAUNCHERS, run_sweep, write_reports
from dyt_mm.cls.vtab1k import TASKS
from dyt_mm.utils.checkpoint import CheckpointError
from dyt_mm.utils.cli import (argument_errors, check_config_file, config_options_action,
                              int_at_least)

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(osp.dirname(TOOLS), 'configs', 'vtab1k')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='VTAB-1K sweep: the Table-3 row of a method')
    parser.add_argument('family', choices=FAMILIES, help='method family (config prefix)')
    parser.add_argument('--tasks', nargs='+', choices=[t.folder for t in TASKS],
                        metavar='TASK', help='task folders (default: all 19)')
    parser.add_argument('--seeds', nargs='+', type=int_at_least(0), default=[0],
                        help='random seeds (default 0); several give mean ± std')
    parser.add_argument('--work-dir', help='default: work_dirs/vtab1k_<family>')
    parser.add_argument('--backbone', default='vit-b16-in21k',
                        help='the config infix (vit-l16-in21k exists for dyt-r0.5)')
    parser.add_argument('--config-dir', default=CONFIG_DIR, help='where the task configs are')
    parser.add_argument('--override-config', metavar='FILE',
                        help='a config merged into every task config')
    parser.add_argument('--cfg-options', nargs='+', action=config_options_action(),
                        help='override settings in every task config, key=value')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='none: train in this process; pytorch: tools/dist_train.sh; '
                        'slurm: tools/slurm_train.sh')
    parser.add_argument('--gpus', type=int_at_least(1), default=1,
                        help='processes (pytorch) or GPUS (slurm) per training')
    parser.add_argument('--partition', help='the slurm partition (--launcher slurm)')
    args = parser.parse_args(argv)
    with argument_errors(parser):
        if args.override_config:
            check_config_file(args.override_config)
        if args.launcher == 'slurm' and not args.partition:
            raise ValueError('--launcher slurm needs --partition')
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f'--seeds repeats a seed: {args.seeds}')
    args.tasks = args.tasks or [t.folder for t in TASKS]
    args.work_dir = args.work_dir or osp.join('work_dirs', f'vtab1k_{args.family}')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        results = run_sweep(
            args.config_dir, args.family, args.tasks, args.seeds, args.work_dir,
            backbone=args.backbone, override=args.override_config, cfg_options=args.cfg_options,
            launcher=args.launcher, tools_dir=TOOLS, gpus=args.gpus, partition=args.partition,
            progress=lambda line: print(line, flush=True))
        report = write_reports(results, args.work_dir, args.family)
    except (ValueError, TypeError, OSError, RuntimeError, CheckpointError) as error:
        raise SystemExit(f'error: {error}')
    row = report['row']
    scope = 'all 19 tasks' if row['complete'] else (
        f'{len(args.tasks)} of 19 tasks: group means over the tasks given, "Mean" over the '
        f'groups {", ".join(row["groups"])}')
    print(f'\nTable-3 row, {args.family}, seeds {" ".join(map(str, row["seeds"]))} ({scope}):')
    print(report['markdown'])
    print(f'written: {report["table3_row.md"]}, {report["table3_row.csv"]}, '
          f'{report["runs.csv"]}')


if __name__ == '__main__':
    sys.exit(main())
