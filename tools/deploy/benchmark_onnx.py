"""Dense vs DyT in ONNX Runtime: the same weights exported twice, timed interleaved.

    python tools/deploy/benchmark_onnx.py CONFIG [--checkpoint CKPT] [--batch-size B]
                                          [--num-iters N] [--warmup W] [--calibrate-rate R]
                                          [--shape [T] H W] [--threads T]
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
so the speedup over eager dense is printed with that bound.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis.reports import (benchmark_header, format_rows, run_speed_tool, seconds_cell,
                                     speedup_line)
from dyt_mm.deploy.benchmark import RUNS, onnx_benchmark_report
from dyt_mm.utils.cli import add_benchmark_arguments


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Dense vs DyT exported to ONNX Runtime')
    add_benchmark_arguments(parser)
    return parser.parse_args(argv)


def describe(args, report) -> str:
    rows = [
        ('', 'eager dense', 'ONNX dense', 'ONNX DyT', 'dense linear layers alone'),
        ('throughput (inputs/s)', *(f"{report[f'throughput_{run}']:.2f}" for run in RUNS)),
        ('batch time, s: median (min-max)', *(seconds_cell(report, run) for run in RUNS)),
        ('max abs diff to PyTorch', '-', f"{report['max_abs_diff_complete']:.1e}",
         f"{report['max_abs_diff_sparse']:.1e}", '-'),
        ('backbone GFLOPs per input', f"{report['gflops_complete']:.3f}",
         f"{report['gflops_complete']:.3f}", f"{report['gflops_sparse']:.3f}", '-'),
        ('keep rate', '1', '1', f"{report['keep_rate']:.3f}", '-'),
    ]
    return '\n'.join(benchmark_header(args, report, 'run') + [
        '', format_rows(rows), '', f'ONNX DyT vs ONNX dense: {speedup_line(report)}',
        f"ONNX DyT vs eager dense PyTorch: {report['speedup_over_eager']:.3f}x   at most "
        f"{report['speedup_over_eager_bound']:.3f}x (ceiling x eager dense / its linear layers "
        "alone: the bound for any runtime whose GEMM runs at PyTorch's speed)",
    ])


def main(argv=None):
    args = parse_args(argv)

    def measure(model, cfg, progress):
        return onnx_benchmark_report(model, cfg, args.batch_size, args.num_iters, args.warmup,
                                     args.calibrate_rate, args.shape, args.threads, progress)

    run_speed_tool(args, len(RUNS), measure, describe)


if __name__ == '__main__':
    sys.exit(main())
