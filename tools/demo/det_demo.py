"""`make demo-det`: a DyT Mask R-CNN adapts a frozen, pre-trained ViT to a new domain, on a CPU.

Data: coloured shapes (disc, square, triangle, cross) written as a COCO-format
instance set (JPEG images; a JSON with boxes and polygon masks;
dyt_mm.demo.det_shapes): a *source* domain on flat backgrounds and a *target*
domain on textured ones.

1. Pre-train a tiny ViTDet-style Mask R-CNN (ViT embed 96, depth 4, patch 8,
   window + global attention, simple feature pyramid; 128 x 128 inputs) on the
   source domain -- the stand-in for an IN-21K checkpoint, which cannot be
   downloaded here. Done once; later runs reuse its backbone.
2. Freeze the ViT and adapt it to the target domain with DyT (r = 0.5):
   adapters, token dispatchers, a new pyramid and new heads, rate loss,
   complete-model loss and RoI self-distillation.
3. Test with real sparse inference and print box and mask mAP (mmdet's
   CocoMetric), the keep rate vs r and the backbone GFLOPs vs dense.

Every stage-2 run gets a fresh, timestamped work dir; nothing is overwritten.
The runs use one CPU thread by default (--threads): Mask R-CNN's many small
operations lose more to thread synchronisation than they gain, the more so
on a shared CPU.
"""
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.det  # noqa: F401
import torch
from dyt_mm.demo.det_shapes import write_det_shapes
from dyt_mm.demo.stages import (adapt, demo_parser, dispatch_rows, pretrain_source, print_table,
                                trainable_parameters)
from dyt_mm.utils.cli import int_at_least
from mmengine.registry import init_default_scope

SOURCE_CONFIG = osp.join(CHECKOUT, 'configs/det/demo/vit-tiny-p8_mask-rcnn_shapes-source.py')
TARGET_CONFIG = osp.join(CHECKOUT,
                         'configs/det/demo/dyt-r0.5_mask-rcnn_vit-tiny-p8_shapes-target.py')


def main():
    parser = demo_parser(__doc__, 'data/det_shapes', 'work_dirs/det_demo')
    parser.add_argument('--threads', type=int_at_least(1), default=1,
                        help='CPU threads of PyTorch (default: 1)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    init_default_scope('mmdet')
    counts = write_det_shapes(args.data_root)
    print(f'[data] COCO-format shapes in {args.data_root} (instances): '
          + ', '.join(f'{k} {v}' for k, v in counts.items()), flush=True)
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, args.work_dir,
                                        'a ViT Mask R-CNN', 'coco/bbox_mAP', progress=True)
    runner, metrics = adapt(TARGET_CONFIG, args.data_root, args.work_dir, base, progress=True)

    print_table('DyT detection demo', [
        ('target box mAP (sparse inference)', f"{100 * metrics['coco/bbox_mAP']:.1f}  (AP50 "
         f"{100 * metrics['coco/bbox_mAP_50']:.1f})"),
        ('target mask mAP', f"{100 * metrics['coco/segm_mAP']:.1f}  (AP50 "
         f"{100 * metrics['coco/segm_mAP_50']:.1f})"),
        *dispatch_rows(runner, '128 x 128 input'),
        ('trainable parameters (adapters, dispatchers, pyramid, heads)',
         f'{trainable_parameters(runner):,}'),
        ('work dir', runner.work_dir),
    ])


if __name__ == '__main__':
    main()
