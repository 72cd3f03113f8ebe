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
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer first)
import dyt_mm.video  # noqa: F401
from dyt_mm.demo.stages import (DyTRunner, demo_config, demo_parser, figure_at_test, print_table,
                                trainable_parameters)
from dyt_mm.demo.video_clips import write_video_clips
from dyt_mm.models.dyt import ViTFlops
from mmengine.registry import init_default_scope

CONFIG = osp.join(CHECKOUT, 'configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py')


def main():
    args = demo_parser(__doc__, 'data/moving_shapes', 'work_dirs/video_demo',
                       with_base=False).parse_args()
    init_default_scope('mmaction')
    counts = write_video_clips(args.data_root)
    print(f'[data] mp4 clips in {args.data_root}: train {counts["train"]}, val {counts["val"]}')
    cfg = demo_config(CONFIG, args.data_root, args.work_dir, progress='[train]')
    print(f'[train] tiny DyT video model -> {cfg.work_dir}')
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()

    model = runner.model
    frames = model.backbone.num_frames
    vit = model.backbone.vit
    dense_frame = ViTFlops(vit).dense() / 1e9
    head = model.cls_head.flops(frames * (vit.num_prefix + vit.grid_size[0] * vit.grid_size[1]))
    frame = figure_at_test(runner, 'gflops')
    print_table('DyT video demo', [
        ('top-1 accuracy, 1 x 3 views (sparse inference)', f"{100 * metrics['acc/top1']:.1f} %"),
        ('mean keep rate on the test clips', f"{figure_at_test(runner, 'keep_rate'):.3f} "
         f'(r = {cfg.model.dyt_loss.target_rate})'),
        ('backbone GFLOPs per frame', f'{frame:.5f} (dense ViT {dense_frame:.5f}, '
         f"{100 * figure_at_test(runner, 'flops_ratio'):.1f} %)"),
        (f'backbone GFLOPs per {frames}-frame clip',
         f'{frames * frame:.4f} (dense {frames * dense_frame:.4f})'),
        ('temporal head GFLOPs per clip', f'{head / 1e9:.5f}'),
        ('trainable parameters', f'{trainable_parameters(runner):,}'),
        ('work dir', cfg.work_dir),
    ])


if __name__ == '__main__':
    main()
