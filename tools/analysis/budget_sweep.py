"""Accuracy, FLOPs and speed of one trained DyT model at several compute budgets.

    python tools/analysis/budget_sweep.py CONFIG CHECKPOINT --targets 0.3 0.5 0.7 0.9
                                          [--unit keep_rate|gflops] [--per-layer]
                                          [--calibration-samples N] [--out curve.png]
                                          [--force] [--batch-size B] [--num-iters N]
                                          [--threads T] [--cfg-options k=v ...]

For each target the dispatchers' test-time thresholds are calibrated
(dyt_mm.calibrate_budget: no weight changes) on the training split seen
through the test pipeline, so that the model keeps that share of tokens
(--unit keep_rate, default) or spends that many backbone GFLOPs per ViT image
(--unit gflops). Then the config's test set is run with the toolbox's
evaluator (top-1, mIoU or video top-1) and the GFLOPs are counted from its
masks. The throughput of every budget (backbone inputs per second, sparse
mode, B test inputs) is timed at the end, interleaved with the complete model.
Printed: a progress line per target (stderr), a table, one JSON line; with
--out, a plot of the metric against GFLOPs with the throughput on a second
axis and the uncalibrated model (the paper's threshold) marked. Timings taken
while the machine was loaded (1-minute load average over 0.5 above the threads in use,
or above --max-load), or a speedup far above its FLOPs ceiling, are marked
UNRELIABLE below the table.
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
from dyt_mm.analysis import build_model, load_config
from dyt_mm.analysis.budget import UNITS, budget_sweep, check_targets, draw_curve
from dyt_mm.analysis.reports import (add_max_load_argument, format_rows, json_line,
                                     unreliable_lines)
from dyt_mm.utils.cli import (argument_errors, check_config_and_checkpoint, check_out_path,
                              int_at_least, plot_suffixes, positive_float)
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Accuracy-FLOPs-speed curve of a DyT model')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('--targets', type=positive_float, nargs='+', required=True,
                        help='keep rates in (0, 1] (or GFLOPs with --unit gflops)')
    parser.add_argument('--unit', choices=UNITS, default='keep_rate',
                        help='what --targets are: keep rates, or backbone GFLOPs per ViT image')
    parser.add_argument('--per-layer', action='store_true',
                        help='one offset per layer (every layer keeps the target) instead of '
                        'one shared offset')
    parser.add_argument('--calibration-samples', type=int_at_least(1), metavar='N',
                        help='calibrate on the first N training samples (default all)')
    parser.add_argument('--out', help='plot to write (.png, .pdf, .svg)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out file')
    parser.add_argument('--batch-size', type=int_at_least(1), default=32,
                        help='test inputs per timed forward')
    parser.add_argument('--num-iters', type=int_at_least(1), default=10, help='timed rounds')
    parser.add_argument('--warmup', type=int_at_least(0), default=2,
                        help='untimed rounds first')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='torch threads (default: torch\'s choice)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    add_max_load_argument(parser)
    args = parser.parse_args(argv)
    # everything the sweep uses only at its end is checked before its minutes of work
    with argument_errors(parser):
        check_targets(args.targets, args.unit)
        if args.out:
            check_out_path(args.out, args.force, plot_suffixes())
    return args


def describe(args, sweep) -> str:
    metric = sweep['metric']
    rows = [('target', 'calib. keep', 'test keep', metric, 'GFLOPs/input', 'inputs/s',
             'vs complete')]
    for p in sweep['points']:
        target = 'uncalibrated' if p['target'] is None else f"{p['target']:g}"
        calib = '' if p['target'] is None else f"{p['calibration_keep_rate']:.4f}"
        rows.append((target, calib, f"{p['keep_rate']:.4f}", f"{p['metric']:.2f}",
                     f"{p['gflops']:.4g}", f"{p['throughput']:.1f}", f"{p['speedup']:.2f}x"))
    return '\n'.join([
        f'config   {args.config}',
        f'weights  {args.checkpoint}',
        f'calibrated on {sweep["calibration_images"]} training samples (test pipeline), '
        f'{"one offset per layer" if sweep["per_layer"] else "one offset for all layers"}',
        f'speed    {sweep["speed_inputs"]}, {args.num_iters} interleaved rounds, '
        f'{sweep["threads"]} torch thread(s); complete model {sweep["throughput_complete"]:.1f} '
        f'inputs/s, {sweep["complete_gflops"]:.4g} GFLOPs',
        '', format_rows(rows), *unreliable_lines(sweep)])


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        check_config_and_checkpoint(args.config, args.checkpoint)
        cfg = load_config(args.config, args.cfg_options)
        model = build_model(cfg, args.checkpoint)
        sweep = budget_sweep(model, cfg, args.targets, args.unit, args.per_layer,
                             args.calibration_samples, args.batch_size, args.num_iters,
                             args.warmup, progress=lambda line: print(line, file=sys.stderr),
                             max_load=args.max_load)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    print(describe(args, sweep))
    if args.out:
        draw_curve(sweep, osp.basename(args.config)).savefig(args.out, dpi=120)
        print(f'wrote {args.out}')
    print(json_line(dict(sweep, config=args.config, checkpoint=args.checkpoint, out=args.out)))


if __name__ == '__main__':
    sys.exit(main())
