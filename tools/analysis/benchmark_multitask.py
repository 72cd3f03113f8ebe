"""Speed and memory of serving N DyT tasks on one frozen ViT, in one mixed batch.

    python tools/analysis/benchmark_multitask.py [--arch base] [--depth D] [--img-size 224]
        [--patch-size 16] [--tasks 4] [--batch-size 32] [--calibrate-rate 0.5]
        [--variant mlp] [--adapter Adapter|LoRA|MoEAdapter] [--num-iters N]
        [--warmup W] [--threads T] [--device cpu|cuda] [--max-load LOAD]

Random weights: one frozen base and, per task, its own random dispatchers and
adapters, each task calibrated to keep the same share of tokens of the
inputs. Timed, interleaved (dyt_mm.analysis.timing), all in sparse mode:

* mixed:      the multi-task model on the batch, tasks interleaved;
* sequential: the N single-task models one after another on their B/N inputs;
* single:     one single-task model on the whole batch (every input one task);

then batch 1 (single vs mixed). Printed: throughputs, the ratios, keep rates,
and memory (the base once plus each task, against N separate models); JSON at
the end. Figures measured on a loaded machine are marked UNRELIABLE.
"""
import argparse
import json
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401,E402  (compatibility layer before any toolbox import)
import torch  # noqa: E402
from dyt_mm.analysis.multitask_speed import multitask_report, random_task_networks  # noqa: E402
from dyt_mm.analysis.reports import (add_max_load_argument, format_rows, seconds_cell,  # noqa
                                     unreliable_mark)
from dyt_mm.models.dyt import ARCH_PRESETS  # noqa: E402
from dyt_mm.utils.cli import int_at_least, keep_rate  # noqa: E402

ADAPTERS = dict(Adapter=dict(type='Adapter'), LoRA=dict(type='LoRA', rank=8),
                MoEAdapter=dict(type='MoEAdapter', num_experts=4))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Speed and memory of multi-task DyT serving')
    parser.add_argument('--arch', choices=tuple(ARCH_PRESETS), default='base')
    parser.add_argument('--depth', type=int_at_least(1),
                        help="blocks, if fewer than the arch's (a quick run)")
    parser.add_argument('--img-size', type=int_at_least(1), default=224)
    parser.add_argument('--patch-size', type=int_at_least(1), default=16)
    parser.add_argument('--tasks', type=int_at_least(1), default=4, help='number of tasks N')
    parser.add_argument('--batch-size', type=int_at_least(1), default=32)
    parser.add_argument('--calibrate-rate', type=keep_rate, default=0.5, metavar='R',
                        help='calibrate every task to keep this share of tokens')
    parser.add_argument('--variant', default='mlp', help='dispatch variant')
    parser.add_argument('--adapter', choices=tuple(ADAPTERS), default='Adapter')
    parser.add_argument('--num-iters', type=int_at_least(1), default=10)
    parser.add_argument('--warmup', type=int_at_least(0), default=2)
    parser.add_argument('--threads', type=int_at_least(1))
    parser.add_argument('--device', default='cpu')
    add_max_load_argument(parser)
    args = parser.parse_args(argv)
    if args.batch_size % args.tasks:
        parser.error(f'--batch-size {args.batch_size} must divide among the {args.tasks} tasks')
    return args


def describe(args, report) -> str:
    n, mib = report['num_tasks'], 2**20
    memory = report['memory']
    rows = [
        ('run', 'inputs/s', 'batch time, s: median (min-max)', 'keep rate'),
        (f'mixed: {n} tasks in one batch of {report["batch_size"]}',
         f"{report['throughput_mixed']:.2f}", seconds_cell(report, 'mixed'),
         f"{report['keep_rate_mixed']:.3f}"),
        (f'sequential: {n} models x {report["per_task_batch"]} inputs',
         f"{report['throughput_sequential']:.2f}", seconds_cell(report, 'sequential'),
         f"{report['keep_rate_sequential']:.3f}"),
        (f'single: 1 model x {report["batch_size"]} inputs',
         f"{report['throughput_single']:.2f}", seconds_cell(report, 'single'),
         f"{report['keep_rate_single']:.3f}"),
        ('mixed, batch 1', f"{report['throughput_mixed_b1']:.2f}",
         seconds_cell(report, 'mixed_b1'), ''),
        ('single, batch 1', f"{report['throughput_single_b1']:.2f}",
         seconds_cell(report, 'single_b1'), ''),
    ]
    per_task = ', '.join(f'{t} {b / mib:.2f}' for t, b in memory['tasks'].items())
    return '\n'.join([
        f"model    DyT ViT-{args.arch}/{args.patch_size} at {args.img_size} px, random "
        f"weights, {args.adapter} adapters, variant {args.variant}, {n} tasks each "
        f"calibrated to keep {args.calibrate_rate}",
        f"run      {report['num_iters']} timed forwards per run after {report['warmup']} "
        f"warm-up, interleaved; {report['device']}, {report['threads']} threads, sparse "
        f"mode; load average {report['load_average']:.2f}",
        '', format_rows(rows), '',
        f"mixed / single = {report['mixed_vs_single']:.3f}x, mixed / sequential = "
        f"{report['mixed_vs_sequential']:.3f}x, batch 1: mixed / single = "
        f"{report['mixed_vs_single_b1']:.3f}x{unreliable_mark(report)}",
        f"memory (MiB): base {memory['base'] / mib:.1f} once + tasks ({per_task}) = "
        f"{memory['total'] / mib:.1f}; {n} separate models {memory['separate'] / mib:.1f} "
        f"(ratio {memory['ratio']:.3f})",
    ])


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    arch = ARCH_PRESETS[args.arch]
    arch = dict(arch, depth=args.depth) if args.depth else args.arch
    options = dict(arch=arch, img_size=args.img_size, patch_size=args.patch_size,
                   variant=args.variant, adapter=ADAPTERS[args.adapter])
    try:
        networks = [n.to(args.device) for n in random_task_networks(options, args.tasks)]
        generator = torch.Generator().manual_seed(0)
        inputs = torch.randn(args.batch_size, 3, args.img_size, args.img_size,
                             generator=generator).to(args.device)
        report = multitask_report(networks, inputs, args.num_iters, args.warmup,
                                  args.calibrate_rate, max_load=args.max_load)
    except ValueError as error:
        sys.exit(f'error: {error}')
    print(describe(args, report))
    print(json.dumps(report, sort_keys=True, default=str))


if __name__ == '__main__':
    main()
