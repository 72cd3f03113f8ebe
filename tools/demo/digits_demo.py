"""`make demo`: DyT adapts a frozen, pre-trained ViT to a new domain, on a CPU, in minutes.

Data: scikit-learn's 1,797 real handwritten digits (shipped with the package),
written as image folders (dyt_mm.demo.digits): two disjoint halves of the
writers form a *source* domain (grey, upright) and a *target* domain (coloured
ink on a grainy background).

1. Pre-train a small ViT (embed 192, depth 6, patch 4, 32 x 32 images) on the
   source domain -- the stand-in for an IN-21K checkpoint, which cannot be
   downloaded here. Done once; later runs reuse it.
2. Freeze it and adapt it to the target domain with DyT (r = 0.5): adapters,
   token dispatchers, rate loss, complete-model CE and self-distillation.
3. Test with real sparse inference and print accuracy, keep rate vs r, GFLOPs
   vs dense and the measured sparse-vs-dense speedup.

Every stage-2 run gets a fresh, timestamped work dir; nothing is overwritten.
"""
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.cls  # noqa: F401
import torch
from dyt_mm.analysis import compare_modes
from dyt_mm.analysis.reports import speedup_summary
from dyt_mm.demo.digits import write_digits
from dyt_mm.demo.stages import (adapt, demo_parser, figure_at_test, pretrain_source, print_table,
                                trainable_parameters)
from mmengine.registry import init_default_scope

SOURCE_CONFIG = osp.join(CHECKOUT, 'configs/demo/vit-tiny-p4_digits-source.py')
TARGET_CONFIG = osp.join(CHECKOUT, 'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py')
SPEED_BATCH = 64


def test_batch(runner, size: int = SPEED_BATCH) -> torch.Tensor:
    images = []
    for data in runner.test_dataloader:
        images.append(runner.model.data_preprocessor(data, False)['inputs'])
        if sum(len(x) for x in images) >= size:
            break
    return torch.cat(images)[:size]


def main():
    args = demo_parser(__doc__, 'data/digits', 'work_dirs/digits_demo').parse_args()
    init_default_scope('mmpretrain')
    counts = write_digits(args.data_root)
    print(f'[data] digits in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, args.work_dir,
                                        'a ViT', 'accuracy/top1', progress=True)
    runner, metrics = adapt(TARGET_CONFIG, args.data_root, args.work_dir, base, progress=True)

    print(f'[speed] sparse vs complete backbone on {SPEED_BATCH} test images')
    speed = compare_modes(runner.model.backbone, test_batch(runner), num_iters=20, warmup=3)
    print_table('DyT digits demo', [
        ('target top-1 accuracy (sparse inference)', f"{metrics['accuracy/top1']:.1f} %"),
        ('mean keep rate on the test set', f"{figure_at_test(runner, 'keep_rate'):.3f} "
         f'(r = {runner.cfg.model.dyt_loss.target_rate})'),
        ('backbone GFLOPs per image', f"{figure_at_test(runner, 'gflops'):.4f} "
         f"({100 * figure_at_test(runner, 'flops_ratio'):.1f} % of the dense ViT)"),
        (f'measured speedup, sparse vs complete, batch {SPEED_BATCH}', speedup_summary(speed)),
        ('trainable parameters', f'{trainable_parameters(runner):,}'),
        ('work dir', runner.work_dir),
    ])


if __name__ == '__main__':
    main()
