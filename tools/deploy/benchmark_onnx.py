"""Dense vs DyT in ONNX Runtime: the same weights exported twice, timed interleaved.

    python tools/deploy/benchmark_onnx.py CONFIG [--checkpoint CKPT] [--batch-size B]
                                          [--num-iters N] [--warmup W] [--calibrate-rate R]
                                          [--shape [T] H W] [--threads T]
                                          [--capacity-quantile Q]
                                          [--precision fp32|bf16|int8]
                                          [--cfg-options k=v ...]

The DyT backbone is exported to ONNX in complete (dense) and in sparse mode
(batch fixed to B; kept-token counts data-dependent), each export checked
against PyTorch, and both run in ONNX Runtime (CPU execution provider, T
intra-op threads) on the same B inputs, interleaved with eager dense PyTorch,
after W warm-up rounds: the protocol of tools/analysis/benchmark.py. Printed:
throughputs, the DyT export's speedup over the dense export, its ceiling (the
backbone's FLOPs ratio at the measured keep rate), efficiency = speedup /
ceiling, the speedup over eager dense PyTorch, the exports' max abs
difference to PyTorch; JSON at the end. A fourth timed run replays only the
dense model's linear layers (the same matrix products, in PyTorch): no
runtime whose GEMM is as fast as PyTorch's can run the dense model faster,
so the speedup over eager dense is printed with that bound. A measurement taken
while the machine was loaded (1-minute load average over 0.5 above the threads in use,
or above --max-load), or a speedup far above its ceiling or bound, is marked
UNRELIABLE, with the reason.

--precision int8 quantises the frozen base's linear layers of both exports to int8 (ONNX
Runtime's dynamic quantisation; tools/deploy/export.py --precision int8 writes the same file):
the exports are checked against their eager int8 reference (mean and max abs diff), the
keep rate and ceiling are the int8 model's, eager dense stays float32 (the baseline), and a
fifth run times the dense model's linear layers alone as an int8 ONNX file: the bound on the
speedup over eager is then the ceiling x eager dense / those int8 layers. --precision bf16
is refused with ONNX Runtime's own message: its CPU provider has no bfloat16 kernels (time
bfloat16 eagerly with tools/analysis/benchmark.py --dtype bfloat16).
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis.reports import (add_max_load_argument, benchmark_header, format_rows,
                                     run_speed_tool, seconds_cell, speedup_line)
from dyt_mm.deploy import PRECISIONS, describe_overflow
from dyt_mm.deploy.benchmark import exported_modes, onnx_benchmark_report, timed_runs
from dyt_mm.utils.cli import add_benchmark_arguments, keep_rate

COLUMNS = dict(eager_complete='eager dense', onnx_complete='ONNX dense', onnx_sparse='ONNX DyT',
               onnx_capacity='ONNX capacity', eager_linear_layers='dense linear layers alone',
               onnx_linear_layers='int8 linear layers alone (ONNX)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Dense vs DyT exported to ONNX Runtime')
    add_benchmark_arguments(parser)
    add_max_load_argument(parser)
    parser.add_argument('--capacity-quantile', type=keep_rate, metavar='Q',
                        help='also time the capacity-mode export (static shapes), each '
                        'site\'s K = this quantile of its kept counts on the inputs')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='the exports\' precision (int8: the frozen base\'s linear layers '
                        'quantised); eager dense stays float32')
    return parser.parse_args(argv)


def describe(args, report) -> str:
    runs = timed_runs(args.capacity_quantile, args.precision)
    int8 = args.precision == 'int8'
    gflops = dict(eager_complete=report['gflops_complete'],
                  onnx_complete=report['gflops_complete'], onnx_sparse=report['gflops_sparse'])
    keep = dict(eager_complete='1', onnx_complete='1', onnx_sparse=f"{report['keep_rate']:.3f}")
    diffs = {f'onnx_{mode}': (f"{report[f'mean_abs_diff_{mode}']:.1e} / " if int8 else '') +
             f"{report[f'max_abs_diff_{mode}']:.1e}"
             for mode in exported_modes(args.capacity_quantile)}
    rows = [
        ('', *(COLUMNS[run] for run in runs)),
        ('throughput (inputs/s)', *(f"{report[f'throughput_{run}']:.2f}" for run in runs)),
        ('batch time, s: median (min-max)', *(seconds_cell(report, run) for run in runs)),
        ('mean / max abs diff to eager int8' if int8 else 'max abs diff to PyTorch',
         *(diffs.get(run, '-') for run in runs)),
        ('backbone GFLOPs per input', *(f'{gflops[run]:.3f}' if run in gflops else '-'
                                        for run in runs)),
        ('keep rate', *(keep.get(run, '-') for run in runs)),
    ]
    lines = benchmark_header(args, report, 'run') + [
        f'precision of the exports: {args.precision} (eager dense: float32)',
        '', format_rows(rows), '', f'ONNX DyT vs ONNX dense: {speedup_line(report)}',
        f"ONNX DyT vs eager dense PyTorch: {report['speedup_over_eager']:.3f}x   at most "
        f"{report['speedup_over_eager_bound']:.3f}x (ceiling x eager dense / its linear layers "
        + ("alone in int8 in ONNX Runtime: the bound at this int8 GEMM rate)" if int8 else
           "alone: the bound for any runtime whose GEMM runs at PyTorch's speed)"),
    ]
    if args.capacity_quantile:
        lines.append(f"ONNX capacity vs ONNX dense: {report['speedup_capacity']:.3f}x   "
                     f"capacities (tokens per sample, per site): {report['capacities']}")
        if any(report['capacity_overflow'].values()):
            lines.append(describe_overflow(report['capacity_overflow']))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)

    def measure(model, cfg, progress):
        return onnx_benchmark_report(model, cfg, args.batch_size, args.num_iters, args.warmup,
                                     args.calibrate_rate, args.shape, args.threads, progress,
                                     args.capacity_quantile, args.max_load, args.precision)

    run_speed_tool(args, len(timed_runs(args.capacity_quantile, args.precision)), measure,
                   describe)


if __name__ == '__main__':
    sys.exit(main())
