"""Real speed of DyT: the same weights in complete (dense) and sparse mode, interleaved.

    python tools/analysis/benchmark.py CONFIG [--checkpoint CKPT] [--batch-size B]
                                       [--num-iters N] [--warmup W] [--calibrate-rate R]
                                       [--shape [T] H W] [--threads T] [--cfg-options k=v ...]

The backbone runs B inputs (from the config's test data, or random ones) in
both modes, alternating their order, after W warm-up rounds. Printed:
throughput of both, the speedup, its ceiling (the backbone's FLOPs ratio at
the keep rate actually measured), efficiency = speedup / ceiling, and each
mode's peak memory; a progress bar (stderr) while it runs; JSON at the end.

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
from dyt_mm.analysis import benchmark_report, build_model, load_config
from dyt_mm.analysis.reports import format_rows, json_line
from dyt_mm.utils.cli import int_at_least, keep_rate
from mmengine.config import DictAction
from mmengine.utils import ProgressBar


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Sparse-vs-dense speed of a DyT model')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('--batch-size', type=int_at_least(1), default=32)
    parser.add_argument('--num-iters', type=int_at_least(1), default=10,
                        help='timed forwards per mode')
    parser.add_argument('--warmup', type=int_at_least(0), default=2,
                        help='untimed forwards per mode first')
    parser.add_argument('--calibrate-rate', type=keep_rate, metavar='R',
                        help='benchmark aid: make the dispatchers keep this fraction of tokens')
    parser.add_argument('--shape', type=int_at_least(1), nargs='+', metavar='SIZE',
                        help='random inputs of this size: H W (images), T H W (clips)')
    parser.add_argument('--threads', type=int_at_least(1), help='torch threads (default: torch\'s choice)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def describe(args, report) -> str:
    def seconds(mode):
        t = report[f'seconds_{mode}']
        return f"{t['median']:.3f} ({t['min']:.3f}-{t['max']:.3f})"

    rows = [
        ('', 'complete (dense)', 'sparse (DyT)'),
        ('throughput (inputs/s)', f"{report['throughput_complete']:.2f}",
         f"{report['throughput_sparse']:.2f}"),
        ('batch time, s: median (min-max)', seconds('complete'), seconds('sparse')),
        ('peak memory (MiB)', f"{report['peak_memory_complete_mb']:.1f}",
         f"{report['peak_memory_sparse_mb']:.1f}"),
        ('backbone GFLOPs per input', f"{report['gflops_complete']:.3f}",
         f"{report['gflops_sparse']:.3f}"),
        ('keep rate', '1', f"{report['keep_rate']:.3f}"),
    ]
    calibrated = ''
    if 'calibrated_keep_rate' in report:
        calibrated = f' (dispatchers calibrated to keep {args.calibrate_rate})'
    return '\n'.join([
        f'config   {args.config}',
        f'weights  {args.checkpoint or "random (no --checkpoint)"}{calibrated}',
        f'inputs   {report["inputs"]}, shape {tuple(report["input_shape"])}',
        f'run      {report["num_iters"]} timed forwards per mode after {report["warmup"]} '
        f'warm-up, interleaved; {report["device"]}, {report["threads"]} threads',
        '', format_rows(rows), '',
        f"speedup {report['speedup']:.3f}x   ceiling {report['ceiling']:.3f}x (backbone FLOPs "
        f"ratio at the measured keep rate)   efficiency {report['efficiency']:.3f}",
        f"memory: {report['memory_measure']}",
    ])


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config, args.cfg_options)
        model = build_model(cfg, args.checkpoint)
        bar = ProgressBar(2 * args.num_iters, file=sys.stderr)
        report = benchmark_report(model, cfg, args.batch_size, args.num_iters, args.warmup,
                                  args.calibrate_rate, args.shape, progress=bar.update)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    sys.stderr.write('\n')
    print(describe(args, report))
    print(json_line(dict(report, config=args.config, checkpoint=args.checkpoint)))


if __name__ == '__main__':
    sys.exit(main())
