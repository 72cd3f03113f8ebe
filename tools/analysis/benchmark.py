"""Real speed of DyT: the same weights in complete (dense) and sparse mode, interleaved.

    python tools/analysis/benchmark.py CONFIG [--checkpoint CKPT] [--batch-size B]
                                       [--num-iters N] [--warmup W] [--calibrate-rate R]
                                       [--shape [T] H W] [--threads T] [--compile]
                                       [--cfg-options k=v ...]

The backbone runs B inputs (from the config's test data, or random ones) in
both modes, alternating their order, after W warm-up rounds. Printed:
throughput of both, the speedup, its ceiling (the backbone's FLOPs ratio at
the keep rate actually measured), efficiency = speedup / ceiling, and each
mode's peak memory; a progress bar (stderr) while it runs; JSON at the end.

--compile times both modes torch.compile-d (inductor; each mode compiled on its
first, untimed call; the sparse graph keeps its data-dependent token counts).

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
from dyt_mm.analysis import benchmark_report
from dyt_mm.analysis.reports import (benchmark_header, format_rows, run_speed_tool, seconds_cell,
                                     speedup_line)
from dyt_mm.analysis.speed import MODES
from dyt_mm.utils.cli import add_benchmark_arguments


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Sparse-vs-dense speed of a DyT model')
    add_benchmark_arguments(parser)
    parser.add_argument('--compile', action='store_true',
                        help='time torch.compile-d dense vs torch.compile-d sparse')
    return parser.parse_args(argv)


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


def main(argv=None):
    args = parse_args(argv)

    def measure(model, cfg, progress):
        return benchmark_report(model, cfg, args.batch_size, args.num_iters, args.warmup,
                                args.calibrate_rate, args.shape, progress=progress,
                                compile=args.compile)

    run_speed_tool(args, len(MODES), measure, describe)


if __name__ == '__main__':
    sys.exit(main())
