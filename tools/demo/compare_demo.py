"""`make demo-compare`: the paper's comparison (Tables 4 and 6) on the digits demo, on a CPU.

From the same pre-trained source ViT (stage 1 of `make demo`, reused when it
exists) and with the same data and schedule (the DyT stage's: 20 epochs, AdamW,
lr 3e-3, 1/10 of it for the methods that train the whole ViT), nine methods
adapt to the target domain: linear probe, full tuning, AdaptFormer, LoRA,
VPT-deep, Dynamic-Full, DyT r = 0.5, and (beyond the paper, docs/dyt_lora.md)
DyT's dispatcher with LoRA, without and with a small MLP adapter. Each is
trained and tested through the Runner (dyt_mm.demo.comparison: a finished run
is not trained again); then all are measured side by side on the same test
batch (dyt_mm.analysis.compare: interleaved, LoRA merged, each in its test
mode). Prints one table: target top-1, test keep rate, trainable ViT
parameters, GFLOPs per image, measured throughput, training-step time.
"""
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.cls  # noqa: F401
from dyt_mm.analysis.reports import format_rows, unreliable_lines
from dyt_mm.demo.comparison import Method, measure, run_methods
from dyt_mm.demo.digits import write_digits
from dyt_mm.demo.stages import demo_parser, pretrain_source
from mmengine.registry import init_default_scope

DEMO = osp.join(CHECKOUT, 'configs/demo')
SOURCE_CONFIG = osp.join(DEMO, 'vit-tiny-p4_digits-source.py')
METHODS = [  # (row name, stage-2 config)
    ('linear probe', 'linear-probe_vit-tiny-p4_digits-target.py'),
    ('full tuning', 'full_vit-tiny-p4_digits-target.py'),
    ('AdaptFormer d=16', 'adaptformer-d16_vit-tiny-p4_digits-target.py'),
    ('LoRA r=8', 'lora-r8_vit-tiny-p4_digits-target.py'),
    ('VPT-deep 8 prompts', 'vpt-deep-p8_vit-tiny-p4_digits-target.py'),
    ('Dynamic-Full r=0.5', 'dynamic-full-r0.5_vit-tiny-p4_digits-target.py'),
    ('DyT r=0.5', 'dyt-r0.5_vit-tiny-p4_digits-target.py'),
    ('DyT+LoRA r=0.5', 'dyt-lora-r8-r0.5_vit-tiny-p4_digits-target.py'),
    ('DyT+LoRA+MLP adapter r=0.5', 'dyt-lora-r8-mlp-d8-r0.5_vit-tiny-p4_digits-target.py'),
]
SPEED_BATCH = 64


def main():
    parser = demo_parser(__doc__, 'data/digits', 'work_dirs/digits_demo')
    parser.add_argument('--num-iters', type=int, default=10, help='timed rounds per model')
    parser.add_argument('--train-only', action='store_true',
                        help='train and test the missing runs, measure nothing (measure later, '
                        'on an idle machine, by running again without it)')
    args = parser.parse_args()
    init_default_scope('mmpretrain')
    counts = write_digits(args.data_root)
    print(f'[data] digits in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, args.work_dir,
                                        'a ViT', 'accuracy/top1', progress=True)
    methods = [Method(name, osp.join(DEMO, config)) for name, config in METHODS]
    results = run_methods(methods, args.data_root, osp.join(args.work_dir, 'compare'), base,
                          'accuracy/top1')
    if args.train_only:
        return
    report = measure(methods, results, 'target top-1 %', SPEED_BATCH, args.num_iters)
    print(f"\n== digits comparison: {report['inputs']}, batch {SPEED_BATCH}, "
          f"{report['device']}, {report['threads']} threads ==")
    print('\n'.join([format_rows(report['table']), *unreliable_lines(report)]))


if __name__ == '__main__':
    main()
