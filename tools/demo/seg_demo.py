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
import argparse
import os.path as osp
import time

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.seg  # noqa: F401
from dyt_mm.demo.seg_shapes import write_seg_shapes
from dyt_mm.engine import DyTRunner
from dyt_mm.utils.checkpoint import export_backbone
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOURCE_CONFIG = osp.join(REPO, 'configs/seg/demo/vit-tiny-p8_upernet_shapes-source.py')
TARGET_CONFIG = osp.join(REPO, 'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/seg_shapes')
    parser.add_argument('--work-dir', default='work_dirs/seg_demo')
    parser.add_argument('--base', help='use this converted ViT checkpoint as the frozen base '
                        'instead of pre-training one (must fit the demo config\'s backbone)')
    return parser.parse_args()


def with_data(cfg: Config, data_root: str) -> Config:
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    return cfg


def pretrain_source(data_root: str, work_dir: str) -> str:
    """Stage 1 (once): a plain ViT UperNet trained on the source domain; its ViT is exported."""
    base = osp.join(work_dir, 'source_vit.pth')
    if osp.isfile(base):
        print(f'[stage 1] reusing the pre-trained source ViT {base}')
        return base
    cfg = with_data(Config.fromfile(SOURCE_CONFIG), data_root)
    cfg.work_dir = osp.join(work_dir, 'source')
    print(f'[stage 1] pre-training a ViT UperNet on the source domain -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    print(f"[stage 1] source-domain mIoU {runner.message_hub.get_scalar('val/mIoU').current():.1f}")
    export_backbone(osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth'), base)
    return base


def main():
    args = parse_args()
    init_default_scope('mmseg')
    counts = write_seg_shapes(args.data_root)
    print(f'[data] shapes in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(args.data_root, args.work_dir)

    cfg = with_data(Config.fromfile(TARGET_CONFIG), args.data_root)
    cfg.model.backbone.init_cfg.checkpoint = base
    cfg.work_dir = osp.join(args.work_dir, time.strftime('target_%Y%m%d_%H%M%S'))
    print(f'[stage 2] DyT adaptation to the target domain -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    hub = runner.message_hub

    r = cfg.model.dyt_loss.target_rate
    trainable = sum(p.numel() for p in runner.model.parameters() if p.requires_grad)
    rows = [
        ('target mIoU (sparse, sliding window)', f"{metrics['mIoU']:.1f} %  (aAcc "
         f"{metrics['aAcc']:.1f} %)"),
        ('mean keep rate on the test set', f"{hub.get_scalar('test/keep_rate').current():.3f} "
         f'(r = {r})'),
        ('backbone GFLOPs per 64 x 64 window', f"{hub.get_scalar('test/gflops').current():.4f} "
         f"({100 * hub.get_scalar('test/flops_ratio').current():.1f} % of the dense ViT)"),
        ('trainable parameters (adapters, dispatchers, pyramid, heads)', f'{trainable:,}'),
        ('work dir', cfg.work_dir),
    ]
    width = max(len(k) for k, _ in rows)
    print('\n== DyT segmentation demo ==')
    for key, value in rows:
        print(f'{key:<{width}}  {value}')


if __name__ == '__main__':
    main()
