"""`make demo-seg`: DyT UperNet adapts a frozen, pre-trained ViT to a new domain, on a CPU.

Data: coloured shapes (disc, square, triangle, cross) written as PNG label
maps in the ADE20K layout (dyt_mm.demo.seg_shapes): a *source* domain on flat
backgrounds and a *target* domain on textured ones.

1. Pre-train a tiny ViT UperNet (embed 128, depth 4, patch 8, 64 x 64 crops)
   on the source domain -- the stand-in for an IN-21K checkpoint, which
   cannot be downloaded here. Done once; later runs reuse its backbone.
2. Freeze the ViT and adapt it to the target domain with DyT (r = 0.5):
   adapters, token dispatchers, a new pyramid and heads, rate loss,
   complete-model loss and pixel-wise self-distillation.
3. Test with real sparse, sliding-window inference and print the mIoU
   (mmseg's IoUMetric), the keep rate vs r and the backbone GFLOPs vs dense.

Every stage-2 run gets a fresh, timestamped work dir; nothing is overwritten.
"""
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.seg  # noqa: F401
from dyt_mm.demo.seg_shapes import write_seg_shapes
from dyt_mm.demo.stages import (adapt, demo_parser, dispatch_rows, pretrain_source, print_table,
                                trainable_parameters)
from mmengine.registry import init_default_scope

SOURCE_CONFIG = osp.join(CHECKOUT, 'configs/seg/demo/vit-tiny-p8_upernet_shapes-source.py')
TARGET_CONFIG = osp.join(CHECKOUT, 'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py')


def main():
    args = demo_parser(__doc__, 'data/seg_shapes', 'work_dirs/seg_demo').parse_args()
    init_default_scope('mmseg')
    counts = write_seg_shapes(args.data_root)
    print(f'[data] shapes in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, args.work_dir,
                                        'a ViT UperNet', 'mIoU', progress=True)
    runner, metrics = adapt(TARGET_CONFIG, args.data_root, args.work_dir, base, progress=True)

    print_table('DyT segmentation demo', [
        ('target mIoU (sparse, sliding window)', f"{metrics['mIoU']:.1f} %  (aAcc "
         f"{metrics['aAcc']:.1f} %)"),
        *dispatch_rows(runner, '64 x 64 window'),
        ('trainable parameters (adapters, dispatchers, pyramid, heads)',
         f'{trainable_parameters(runner):,}'),
        ('work dir', runner.work_dir),
    ])


if __name__ == '__main__':
    main()
