"""`make demo-compare`: the paper's comparison (Tables 4 and 6) on the digits demo, on a CPU.

From the same pre-trained source ViT (stage 1 of `make demo`, reused when it
exists) and with the same data and schedule (the DyT stage's: 20 epochs, AdamW,
lr 3e-3, 1/10 of it for the methods that train the whole ViT), seven methods
adapt to the target domain: linear probe, full tuning, AdaptFormer, LoRA,
VPT-deep, Dynamic-Full and DyT r = 0.5. Each is trained and tested through
the Runner; then all are measured side by side on the same test batch
(dyt_mm.analysis.compare: interleaved, LoRA merged, each in its test mode).
Prints one table: target top-1, trainable ViT parameters, GFLOPs per image,
measured throughput, training-step time. Every run gets fresh work dirs.
"""
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.cls  # noqa: F401
from dyt_mm.analysis.compare import Candidate, compare_candidates, comparison_table
from dyt_mm.analysis.reports import format_rows, unreliable_lines
from dyt_mm.demo.digits import write_digits
from dyt_mm.demo.stages import adapt, demo_parser, pretrain_source
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
]
SPEED_BATCH = 64


def main():
    parser = demo_parser(__doc__, 'data/digits', 'work_dirs/digits_demo')
    parser.add_argument('--num-iters', type=int, default=10, help='timed rounds per model')
    args = parser.parse_args()
    init_default_scope('mmpretrain')
    counts = write_digits(args.data_root)
    print(f'[data] digits in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, args.work_dir,
                                        'a ViT', 'accuracy/top1', progress=True)
    candidates, top1 = [], []
    for i, (name, config) in enumerate(METHODS):
        print(f'[method {i + 1}/{len(METHODS)}] {name}', flush=True)
        work_dir = osp.join(args.work_dir, 'compare', config.split('_')[0])
        runner, metrics = adapt(osp.join(DEMO, config), args.data_root, work_dir, base, name,
                                progress=True)
        top1.append(metrics['accuracy/top1'])
        print(f'[method {i + 1}/{len(METHODS)}] {name}: target top-1 {top1[-1]:.1f} %',
              flush=True)
        candidates.append(Candidate(name, runner.cfg, runner.model))
    report = compare_candidates(candidates, batch_size=SPEED_BATCH, num_iters=args.num_iters,
                                progress=lambda message: print(message, flush=True))
    table = comparison_table(report, [name for name, _ in METHODS])
    table[0].insert(1, 'target top-1 %')
    for row, accuracy in zip(table[1:], top1):
        row.insert(1, f'{accuracy:.1f}')
    print(f"\n== digits comparison: {report['inputs']}, batch {SPEED_BATCH}, "
          f"{report['device']}, {report['threads']} threads ==")
    print('\n'.join([format_rows(table), *unreliable_lines(report)]))


if __name__ == '__main__':
    main()
