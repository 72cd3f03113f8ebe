"""Draw the per-layer keep rates of a DyT run over training: layers x log points.

    python tools/analysis/plot_keep_rates.py JSON_LOG --out OUT.png [--phase train|val]
                                             [--title TEXT] [--force]

JSON_LOG is a run's ``<work_dir>/<timestamp>/vis_data/scalars.json`` (or the
``<timestamp>.json`` beside it). ``--phase train`` (default) takes every logged
training iteration, ``--phase val`` every validation. The colour is the share of
image tokens each layer's dispatcher kept (``keep_rate_l{i}``, logged by
DispatchMetricsHook). For a few keys as curves, use the toolbox's own tool:
``mim run mmpretrain analyze_logs plot_curve JSON_LOG --keys keep_rate loss_rate``
(docs/logs.md).
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

from dyt_mm.analysis.keep_rate_log import PHASES, draw_keep_rates, read_keep_rates  # noqa: E402
from dyt_mm.utils.cli import check_out_path, plot_suffixes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw per-layer keep rates over training')
    parser.add_argument('log', help="a run's json scalar log (vis_data/scalars.json)")
    parser.add_argument('--out', required=True, help='picture to write (.png, .pdf, .svg)')
    parser.add_argument('--phase', choices=PHASES, default='train',
                        help='training iterations (default) or validations')
    parser.add_argument('--title', default='', help='title of the picture')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if not osp.isfile(args.log):
            raise FileNotFoundError(f'log not found: {args.log}')
        check_out_path(args.out, args.force, plot_suffixes())
        keep = read_keep_rates(args.log, args.phase)
        draw_keep_rates(keep, args.title).savefig(args.out, dpi=120)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    sites, points = keep.rates.shape
    print(f'wrote {args.out}: {sites} layers x {points} {keep.x_label} points '
          f'({keep.points[0]} ... {keep.points[-1]}); last keep rates: '
          + ' '.join(f'{r:.2f}' for r in keep.rates[:, -1]))


if __name__ == '__main__':
    sys.exit(main())
