"""Draw which tokens DyT's dispatchers let through, per layer, on one input file.

    python tools/analysis/visualize_dispatch.py CONFIG CHECKPOINT INPUT --out OUT.png
                                                [--force] [--cfg-options k=v ...]

INPUT is an image (classification, segmentation) or a video file. The model
runs it through the config's test pipeline in its test mode. The picture
shows the input, then one panel per dispatch site in which the tokens that
went through the dispatched block are bright and the skipped ones dark (for
video, one row per frame; for segmentation, the predicted mask beside), and
the keep rate per layer as bars. The last line printed is JSON.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis import build_model, load_config, visualize_dispatch
from dyt_mm.analysis.reports import describe_offsets, json_line
from dyt_mm.utils.cli import check_out_path, plot_suffixes
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw the token dispatch of a DyT model')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('input', help='image or video file')
    parser.add_argument('--out', required=True, help='picture to write (.png, .pdf, .svg)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_out_path(args.out, args.force, plot_suffixes())
        cfg = load_config(args.config, args.cfg_options)
        model = build_model(cfg, args.checkpoint)
        result = visualize_dispatch(model, cfg, args.input, args.out)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    rates = ' '.join(f'{s} {r:.2f}' for s, r in zip(result['sites'], result['keep_rate_per_site']))
    print(f'wrote {args.out}: keep rate {result["keep_rate"]:.3f}; per site: {rates}')
    for line in describe_offsets(result['sites'], result['threshold_offsets']):
        print(line)
    print(json_line(dict(result, config=args.config, checkpoint=args.checkpoint,
                         input=args.input)))


if __name__ == '__main__':
    sys.exit(main())
