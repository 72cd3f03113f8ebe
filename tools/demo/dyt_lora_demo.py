"""`make demo-dyt-lora`: DyT's dispatcher with LoRA against DyT, LoRA and AdaptFormer on the
three demos (digits, segmentation, video), in one table per demo (docs/dyt_lora.md).

Five methods per demo, all from the demo's own source model and with the DyT stage's data and
schedule: DyT r = 0.5 (the paper's adapter), DyT + LoRA (the dispatcher with LoRA rank 8 on q
and v in place of the adapter), DyT + LoRA + MLP adapter (and a d = 8 adapter beside the MLP
that every token goes through), LoRA rank 8 and AdaptFormer d = 16, both without dispatch.
The digits rows are trained with 3 seeds (mean ± std); the others with one.

The source models are those of `make demo` and `make demo-seg` (stage 1 runs once when
missing; --digits-base / --seg-base reuse a given one); the video demo's frozen base is its
seeded random ViT. Runs resume: a (method, seed) whose result.json exists is not trained
again, and the digits runs of seed 0 are those of `make demo-compare` (the same folders).
Prints each demo's table (metric, test keep rate, GFLOPs, throughput, ...); --out also writes
them as markdown.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.cls  # noqa: F401
import dyt_mm.seg  # noqa: F401
import dyt_mm.video  # noqa: F401
from dyt_mm.analysis.compare import markdown
from dyt_mm.analysis.reports import format_rows, unreliable_lines
from dyt_mm.demo.comparison import Method, measure, run_methods
from dyt_mm.demo.digits import write_digits
from dyt_mm.demo.seg_shapes import write_seg_shapes
from dyt_mm.demo.stages import pretrain_source
from dyt_mm.demo.video_clips import write_video_clips
from dyt_mm.utils.checkpoint import atomic_write_text
from mmengine.registry import init_default_scope

CONFIGS = osp.join(CHECKOUT, 'configs')
METHODS = [  # (row name, config method prefix)
    ('DyT r=0.5', 'dyt-r0.5'),
    ('DyT+LoRA r=0.5', 'dyt-lora-r8-r0.5'),
    ('DyT+LoRA+MLP adapter r=0.5', 'dyt-lora-r8-mlp-d8-r0.5'),
    ('LoRA r=8', 'lora-r8'),
    ('AdaptFormer d=16', 'adaptformer-d16'),
]
# demo -> scope, config folder, config name after the method prefix, metric key, its scale to %,
# the table's metric name, speed batch, whether the training step is timed
DEMOS = {
    'digits': ('mmpretrain', 'demo', '_vit-tiny-p4_digits-target.py', 'accuracy/top1', 1.0,
               'target top-1 %', 64, True),
    'seg': ('mmseg', 'seg/demo', '_upernet_vit-tiny-p8_shapes-target.py', 'mIoU', 1.0,
            'target mIoU %', 8, False),
    'video': ('mmaction', 'video/demo', '_vit-tiny-p8_8x2x1_moving-shapes.py', 'acc/top1', 100.0,
              'top-1 % (1 x 3 views)', 8, True),
}
SOURCES = {  # demo -> stage-1 config, what it is, its validation metric
    'digits': ('demo/vit-tiny-p4_digits-source.py', 'a ViT', 'accuracy/top1'),
    'seg': ('seg/demo/vit-tiny-p8_upernet_shapes-source.py', 'a ViT UperNet', 'mIoU'),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--demos', nargs='+', choices=sorted(DEMOS), default=list(DEMOS),
                        help='which demos, in this order')
    parser.add_argument('--seeds', type=int, default=3, help='seeds of the digits rows')
    parser.add_argument('--data-root', default='data', help='folder of the demos\' data')
    parser.add_argument('--work-dir', default='work_dirs',
                        help='folder of the demos\' work dirs (<demo>_demo/ inside)')
    parser.add_argument('--digits-base', help='the digits source ViT checkpoint to reuse')
    parser.add_argument('--seg-base', help='the segmentation source ViT checkpoint to reuse')
    parser.add_argument('--num-iters', type=int, default=10, help='timed rounds per model')
    parser.add_argument('--train-only', action='store_true',
                        help='train and test the missing runs, measure nothing (measure later, '
                        'on an idle machine, by running again without it)')
    parser.add_argument('--out', help='also write the tables as markdown to this file')
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    return args


def run_demo(demo: str, args) -> str:
    scope, folder, suffix, metric, scale, metric_name, batch, train = DEMOS[demo]
    init_default_scope(scope)
    data_root = osp.join(args.data_root, {'digits': 'digits', 'seg': 'seg_shapes',
                                          'video': 'moving_shapes'}[demo])
    {'digits': write_digits, 'seg': write_seg_shapes, 'video': write_video_clips}[demo](data_root)
    work_dir = osp.join(args.work_dir, f'{demo}_demo')
    base = getattr(args, f'{demo}_base', None)
    if demo in SOURCES and base is None:
        config, what, source_metric = SOURCES[demo]
        base = pretrain_source(osp.join(CONFIGS, config), data_root, work_dir, what,
                               source_metric, progress=True)
    seeds = args.seeds if demo == 'digits' else 1
    methods = [Method(name, osp.join(CONFIGS, folder, prefix + suffix), seeds)
               for name, prefix in METHODS]
    results = run_methods(methods, data_root, osp.join(work_dir, 'compare'), base, metric, scale)
    if args.train_only:
        return ''
    report = measure(methods, results, metric_name, batch, args.num_iters, train=train)
    title = (f"{demo} demo: {report['inputs']}, batch {batch}, {report['device']}, "
             f"{report['threads']} threads, load average {report['load_average']:.1f}")
    print(f'\n== {title} ==')
    print('\n'.join([format_rows(report['table']), *unreliable_lines(report)]), flush=True)
    notes = ''.join(f'\n{line}  ' for line in unreliable_lines(report))
    return f'**{title}**\n\n{markdown(report["table"])}\n{notes}'


def main():
    args = parse_args()
    tables = []
    for demo in args.demos:
        tables.append(run_demo(demo, args))
        # written after each demo: a later failure keeps the finished tables
        if args.out and not args.train_only:
            atomic_write_text('\n\n'.join(tables) + '\n', args.out)


if __name__ == '__main__':
    main()
