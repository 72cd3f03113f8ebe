"""Compare methods (DyT, adapters, LoRA, VPT, full tuning...) on the same inputs, interleaved.

    python tools/analysis/compare_methods.py CONFIG [CONFIG ...] [--checkpoint CKPT ...]
        [--names NAME ...] [--batch-size B] [--num-iters N] [--warmup W] [--shape H W]
        [--no-train] [--threads T] [--out table.md] [--force] [--cfg-options k=v ...]

For each config: trainable ViT parameters (M, head excluded, the paper's
convention), GFLOPs per input from the masks the model really produces,
inference throughput (whole model in its test mode, LoRA merged) and its ratio
to the first config, peak inference memory, and the cost of one training step
(forward + backward of the config's loss with every term it uses -- DyT's
complete-model pass included) with its peak memory. All models run on the same
batch (the first config's test data, or random inputs) in one interleaved loop.
Timings taken while the machine was loaded (1-minute load average above the
threads in use, or above --max-load) are marked UNRELIABLE below the table.
The last line is the whole report as JSON; --out writes the table as markdown.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
import torch
from dyt_mm.analysis.compare import compare_methods, comparison_table, markdown
from dyt_mm.analysis.reports import (add_max_load_argument, format_rows, json_line,
                                     unreliable_lines)
from dyt_mm.analysis.toolbox import scope_of
from dyt_mm.utils.cli import argument_errors, check_config_file, check_out_path, int_at_least
from mmengine.config import Config, DictAction

TASKS = dict(mmpretrain='classification', mmseg='segmentation', mmaction='video recognition',
             mmdet='detection')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Compare methods on the same inputs')
    parser.add_argument('configs', nargs='+', help='model config files; the first is the '
                        'reference of the speed ratio')
    parser.add_argument('--checkpoint', nargs='+', default=[],
                        help='one checkpoint per config (full or adapter-only, tensors only)')
    parser.add_argument('--names', nargs='+', help='row names (default: the config files)')
    parser.add_argument('--batch-size', type=int_at_least(1), default=8)
    parser.add_argument('--num-iters', type=int_at_least(1), default=10, help='timed rounds')
    parser.add_argument('--warmup', type=int_at_least(0), default=2,
                        help='untimed rounds first')
    parser.add_argument('--shape', type=int_at_least(1), nargs='+', metavar='SIZE',
                        help='random inputs of this size: H W (images), T H W (clips)')
    parser.add_argument('--no-train', action='store_true', help='skip the training-step cost')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='torch threads (default: torch\'s choice)')
    parser.add_argument('--out', help='write the table as markdown to this file')
    parser.add_argument('--force', action='store_true', help='replace an existing --out file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in every config, key=value')
    add_max_load_argument(parser)
    args = parser.parse_args(argv)
    with argument_errors(parser):
        if args.names and len(args.names) != len(args.configs):
            raise ValueError(f'--names gives {len(args.names)} names for '
                             f'{len(args.configs)} configs')
        if args.out:
            check_out_path(args.out, args.force)
        for config in args.configs:
            check_config_file(config)
        check_one_toolbox(args.configs)
    return args


def check_one_toolbox(configs):
    """All models run on the first config's inputs: a model of another toolbox would
    run on inputs that mean nothing to it (or fail in its registry)."""
    scopes = [scope_of(Config.fromfile(config)) for config in configs]
    for config, scope in zip(configs[1:], scopes[1:]):
        if scope != scopes[0]:
            raise ValueError(
                f'{configs[0]} is a {scopes[0]} config ({TASKS[scopes[0]]}) but {config} is '
                f'a {scope} config ({TASKS[scope]}): compare_methods.py runs all models on the '
                'same inputs, so compare configs of one toolbox')


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        report = compare_methods(
            args.configs, args.checkpoint, args.cfg_options, batch_size=args.batch_size,
            num_iters=args.num_iters, warmup=args.warmup, train=not args.no_train,
            shape=args.shape, max_load=args.max_load,
            progress=lambda message: print(message, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    table = comparison_table(report, args.names)
    print(f"inputs {report['inputs']}, shape {tuple(report['input_shape'])}; "
          f"{report['num_iters']} timed rounds after {report['warmup']} warm-up, interleaved; "
          f"{report['device']}, {report['threads']} threads")
    print('\n'.join([format_rows(table), *unreliable_lines(report)]))
    if args.out:
        with open(args.out, 'w') as f:
            f.write(markdown(table) + '\n')
    print(json_line(report))


if __name__ == '__main__':
    sys.exit(main())
