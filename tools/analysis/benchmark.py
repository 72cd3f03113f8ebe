"""Real speed of DyT: the same weights in complete (dense) and sparse mode, interleaved.

    python tools/analysis/benchmark.py CONFIG [--checkpoint CKPT] [--batch-size B]
                                       [--num-iters N] [--warmup W] [--calibrate-rate R]
                                       [--shape [T] H W] [--threads T] [--compile]
                                       [--merge-r R] [--dtype float32|bfloat16]
                                       [--cfg-options k=v ...]

The backbone runs B inputs (from the config's test data, or random ones) in
both modes, alternating their order, after W warm-up rounds. Printed:
throughput of both, the speedup, its ceiling (the backbone's FLOPs ratio at
the keep rate actually measured), efficiency = speedup / ceiling, and each
mode's peak memory; a progress bar (stderr) while it runs; JSON at the end.

--compile times both modes torch.compile-d (inductor; each mode compiled on its
first, untimed call; the sparse graph keeps its data-dependent token counts).

--merge-r R times four runs of the same weights instead, interleaved: dense,
DyT (sparse), ToMe (R tokens merged per block, complete) and DyT + ToMe
(sparse), each with its speedup over dense and its FLOPs ceiling (paper,
Table 5). With --calibrate-rate, DyT and DyT + ToMe are calibrated separately.

--dtype bfloat16 times a bfloat16 copy of the model on bfloat16 inputs (CPUs
with AMX or AVX-512 BF16 run its matrix products on those units); the keep
rate, ceiling and calibration are those of that copy.

A measurement taken while the machine was loaded (1-minute load average above
the threads in use, or above --max-load) or a speedup far above its ceiling is
marked UNRELIABLE, with the reason.

--calibrate-rate R is a benchmark aid for models without trained dispatchers
(no checkpoint): it sets each dispatcher's threshold offset so that it keeps
a fraction R of the benchmark inputs' tokens. For trained checkpoints, see
budget_sweep.py.
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
from dyt_mm.analysis import benchmark_report
from dyt_mm.analysis.reports import (add_max_load_argument, benchmark_header,
                                     calibrated_benchmark_inputs, format_rows, run_speed_tool,
                                     seconds_cell, speedup_line)
from dyt_mm.analysis.speed import MODES
from dyt_mm.analysis.tome import MERGING_RUNS, compare_merging
from dyt_mm.utils.cli import add_benchmark_arguments, int_at_least

DTYPES = dict(float32=torch.float32, bfloat16=torch.bfloat16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Sparse-vs-dense speed of a DyT model')
    add_benchmark_arguments(parser)
    add_max_load_argument(parser)
    parser.add_argument('--compile', action='store_true',
                        help='time torch.compile-d dense vs torch.compile-d sparse')
    parser.add_argument('--merge-r', type=int_at_least(1), metavar='R',
                        help='time dense, DyT, ToMe and DyT + ToMe, merging R tokens per block')
    parser.add_argument('--dtype', choices=tuple(DTYPES), default='float32',
                        help='run a copy of the model and the inputs in this type')
    args = parser.parse_args(argv)
    if args.merge_r is not None and args.compile:
        parser.error('--merge-r times eager runs; it does not combine with --compile')
    if args.merge_r is not None and args.dtype != 'float32':
        parser.error('--merge-r times float32 runs; it does not combine with --dtype')
    return args


def describe(args, report) -> str:
    rows = [
        ('', 'complete (dense)', 'sparse (DyT)'),
        ('throughput (inputs/s)', f"{report['throughput_complete']:.2f}",
         f"{report['throughput_sparse']:.2f}"),
        ('batch time, s: median (min-max)', seconds_cell(report, 'complete'),
         seconds_cell(report, 'sparse')),
        ('peak memory (MiB)', f"{report['peak_memory_complete_mb']:.1f}",
         f"{report['peak_memory_sparse_mb']:.1f}"),
        ('backbone GFLOPs per input', f"{report['gflops_complete']:.3f}",
         f"{report['gflops_sparse']:.3f}"),
        ('keep rate', '1', f"{report['keep_rate']:.3f}"),
    ]
    compiled = ' (both torch.compile-d)' if report['compiled'] else ''
    return '\n'.join(benchmark_header(args, report, 'mode' + compiled) + [
        '', format_rows(rows), '', speedup_line(report),
        f"memory: {report['memory_measure']}",
    ])


MERGING_NAMES = {'dense': 'dense', 'dyt': 'DyT', 'tome': 'ToMe', 'dyt_tome': 'DyT + ToMe'}


def describe_merging(args, report) -> str:
    runs = list(MERGING_RUNS)
    rows = [('', *(MERGING_NAMES[r] for r in runs)),
            ('throughput (inputs/s)', *(f"{report[f'throughput_{r}']:.2f}" for r in runs)),
            ('batch time, s: median (min-max)', *(seconds_cell(report, r) for r in runs)),
            ('backbone GFLOPs per input', *(f"{report[f'gflops_{r}']:.3f}" for r in runs)),
            ('keep rate', *(f"{report[f'keep_rate_{r}']:.3f}" for r in runs)),
            ('speedup over dense', *(f"{report[f'speedup_{r}']:.3f}x" for r in runs)),
            ('ceiling (FLOPs ratio)', *(f"{report[f'ceiling_{r}']:.3f}x" for r in runs)),
            ('efficiency', *(f"{report[f'efficiency_{r}']:.3f}" for r in runs))]
    return '\n'.join(benchmark_header(args, report, 'run') + [
        f"ToMe merges {report['merge_r']} image tokens per block; dense and ToMe run complete "
        '(adapters on, nothing skipped), DyT and DyT + ToMe sparse', '', format_rows(rows)])


def main(argv=None):
    args = parse_args(argv)
    if args.merge_r is not None:
        def measure_merging(model, cfg, progress):
            inputs, report = calibrated_benchmark_inputs(model, cfg, args.batch_size, None,
                                                         args.shape)
            report.update(compare_merging(model, inputs, args.merge_r, args.num_iters,
                                          args.warmup, args.calibrate_rate, progress,
                                          args.max_load))
            if args.calibrate_rate is not None:
                report['calibrated_keep_rate'] = report['keep_rate_dyt_tome']
            return report

        return run_speed_tool(args, len(MERGING_RUNS), measure_merging, describe_merging)

    def measure(model, cfg, progress):
        return benchmark_report(model, cfg, args.batch_size, args.num_iters, args.warmup,
                                args.calibrate_rate, args.shape, progress=progress,
                                compile=args.compile, dtype=DTYPES[args.dtype],
                                max_load=args.max_load)

    run_speed_tool(args, len(MODES), measure, describe)


if __name__ == '__main__':
    sys.exit(main())
