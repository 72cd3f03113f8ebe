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
import argparse
import os.path as osp
import time

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.cls  # noqa: F401
import torch
from dyt_mm.analysis import compare_modes
from dyt_mm.demo.digits import write_digits
from dyt_mm.engine import DyTRunner
from dyt_mm.utils.checkpoint import export_backbone
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOURCE_CONFIG = osp.join(REPO, 'configs/demo/vit-tiny-p4_digits-source.py')
TARGET_CONFIG = osp.join(REPO, 'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/digits')
    parser.add_argument('--work-dir', default='work_dirs/digits_demo')
    parser.add_argument('--base', help='use this converted ViT checkpoint as the frozen base '
                        'instead of pre-training one (must fit the demo config\'s backbone)')
    return parser.parse_args()


def with_data(cfg: Config, data_root: str) -> Config:
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    return cfg


def pretrain_source(data_root: str, work_dir: str) -> str:
    """Stage 1 (once): a plain ViT trained on the source domain, exported as a base."""
    base = osp.join(work_dir, 'source_vit.pth')
    if osp.isfile(base):
        print(f'[stage 1] reusing the pre-trained source ViT {base}')
        return base
    cfg = with_data(Config.fromfile(SOURCE_CONFIG), data_root)
    cfg.work_dir = osp.join(work_dir, 'source')
    print(f'[stage 1] pre-training a ViT on the source domain -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    last = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    export_backbone(last, base)
    return base


def val_batch(runner, size: int = 64) -> torch.Tensor:
    images = []
    for data in runner.test_dataloader:
        images.append(runner.model.data_preprocessor(data, False)['inputs'])
        if sum(len(x) for x in images) >= size:
            break
    return torch.cat(images)[:size]


def main():
    args = parse_args()
    init_default_scope('mmpretrain')
    counts = write_digits(args.data_root)
    print(f'[data] digits in {args.data_root}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    base = args.base or pretrain_source(args.data_root, args.work_dir)

    cfg = with_data(Config.fromfile(TARGET_CONFIG), args.data_root)
    cfg.model.backbone.init_cfg.checkpoint = base
    cfg.work_dir = osp.join(args.work_dir, time.strftime('target_%Y%m%d_%H%M%S'))
    print(f'[stage 2] DyT adaptation to the target domain -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    hub = runner.message_hub.log_scalars

    speed = compare_modes(runner.model.backbone, val_batch(runner), num_iters=20, warmup=3)
    r = cfg.model.dyt_loss.target_rate
    rows = [
        ('target top-1 accuracy (sparse inference)', f"{metrics['accuracy/top1']:.1f} %"),
        ('mean keep rate on the test set', f"{hub['test/keep_rate'].current():.3f} (r = {r})"),
        ('backbone GFLOPs per image', f"{hub['test/gflops'].current():.4f} "
         f"({100 * hub['test/flops_ratio'].current():.1f} % of the dense ViT)"),
        ('measured speedup, sparse vs dense, batch 64',
         f"{speed['speedup']:.2f}x (FLOPs ceiling {speed['ceiling']:.2f}x)"),
        ('trainable parameters', f"{sum(p.numel() for p in runner.model.parameters() if p.requires_grad):,}"),
        ('work dir', cfg.work_dir),
    ]
    width = max(len(k) for k, _ in rows)
    print('\n== DyT digits demo ==')
    for key, value in rows:
        print(f'{key:<{width}}  {value}')


if __name__ == '__main__':
    main()
