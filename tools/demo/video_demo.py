"""`make demo-video`: DyT learns how a shape moves in real mp4 clips, on a CPU, in minutes.

Data: short mp4 clips written once by dyt_mm.demo.video_clips (OpenCV, mp4v;
decoded by mmaction's decord pipeline): a shape that stays still or glides
horizontally, vertically or diagonally. The motion wraps around the frame, so
one frame alone cannot tell the classes apart; only the frames together can.

1. Train a tiny DyT video model (configs/video/demo/): every frame through the
   frozen ViT with its own token dispatch, a learnable query cross-attending
   to the tokens of all 8 frames, r = 0.5 and every DyT term.
2. Test with real sparse inference on 1 x 3 temporal views per clip (averaged
   by the head, as mmaction does) and print top-1 (mmaction's AccMetric), the
   keep rate vs r and the backbone GFLOPs per frame and per clip vs dense.

Every run gets a fresh, timestamped work dir; nothing is overwritten.
"""
import argparse
import os.path as osp
import time

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.video  # noqa: F401
from dyt_mm.demo.video_clips import write_video_clips
from dyt_mm.engine import DyTRunner
from dyt_mm.models.dyt import ViTFlops
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/moving_shapes')
    parser.add_argument('--work-dir', default='work_dirs/video_demo')
    return parser.parse_args()


def demo_config(data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    run_dir = osp.join(work_dir, time.strftime('%Y%m%d_%H%M%S'))
    if osp.exists(run_dir):
        raise SystemExit(f'error: {run_dir} exists; not overwriting it (try again in a second)')
    cfg.work_dir = run_dir
    return cfg


def main():
    args = parse_args()
    init_default_scope('mmaction')
    counts = write_video_clips(args.data_root)
    print(f'[data] mp4 clips in {args.data_root}: train {counts["train"]}, val {counts["val"]}')
    cfg = demo_config(args.data_root, args.work_dir)
    print(f'[train] tiny DyT video model -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    hub = runner.message_hub.log_scalars

    model = runner.model
    frames = model.backbone.num_frames
    vit = model.backbone.vit
    dense_frame = ViTFlops(vit).dense()
    head = model.cls_head.flops(frames * (vit.num_prefix + vit.grid_size[0] * vit.grid_size[1]))
    frame = hub['test/gflops'].current() * 1e9
    r = cfg.model.dyt_loss.target_rate
    rows = [
        ('top-1 accuracy, 1 x 3 views (sparse inference)', f"{100 * metrics['acc/top1']:.1f} %"),
        ('mean keep rate on the test clips', f"{hub['test/keep_rate'].current():.3f} (r = {r})"),
        ('backbone GFLOPs per frame', f'{frame / 1e9:.5f} (dense ViT {dense_frame / 1e9:.5f}, '
         f"{100 * hub['test/flops_ratio'].current():.1f} %)"),
        (f'backbone GFLOPs per {frames}-frame clip',
         f'{frames * frame / 1e9:.4f} (dense {frames * dense_frame / 1e9:.4f})'),
        ('temporal head GFLOPs per clip', f'{head / 1e9:.5f}'),
        ('trainable parameters',
         f'{sum(p.numel() for p in model.parameters() if p.requires_grad):,}'),
        ('work dir', cfg.work_dir),
    ]
    width = max(len(k) for k, _ in rows)
    print('\n== DyT video demo ==')
    for key, value in rows:
        print(f'{key:<{width}}  {value}')


if __name__ == '__main__':
    main()
