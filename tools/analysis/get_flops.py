"""FLOPs of a DyT model: dense, complete, and what sparse inference really costs.

    python tools/analysis/get_flops.py CONFIG [--checkpoint CKPT] [--num-samples N]
                                       [--shape [T] H W] [--cfg-options k=v ...]

One multiply-add is one FLOP and the attention matmuls are counted, so a dense
ViT-B/16 at 224 x 224 is 17.58 G. The DyT figures are per backbone input (an
image, a crop, or a clip of T frames) and follow the masks the model produces
on the first N samples of the config's test data; without that data (or with
--shape) random inputs are used, and the output says so. The last line is
the whole report as JSON.

LoRA is merged into the frozen weights first, as deployed: it costs nothing
(``lora_merged`` in the JSON says how many blocks held one).

With token merging (``merge=dict(r=R)``) a row gives the plain ViT with the
same merging (the paper's Full + ToMe), and every figure counts each block at
the tokens merging left it.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis import build_model, dyt_parts, flops_report, load_config
from dyt_mm.analysis.reports import describe_offsets, format_rows, json_line
from dyt_mm.utils.cli import int_at_least
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='FLOPs of a DyT model')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('--num-samples', type=int_at_least(1), default=32,
                        help='test samples (or random inputs) whose masks are counted')
    parser.add_argument('--shape', type=int_at_least(1), nargs='+', metavar='SIZE',
                        help='random inputs of this size: H W (images), T H W (clips)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def gflops(value: float) -> str:
    return f'{value:.2f}' if value >= 1 else f'{value:.4f}'


def describe(args, report) -> str:
    dense = report['dense_gflops']
    shape = 'x'.join(map(str, report['input_shape']))
    # detectors are counted as the paper's detection table: backbone + neck (FPN) only
    model, outside = (('backbone + FPN', 'the FPN neck') if report['counted'] == 'features'
                      else ('model', 'heads, necks'))
    rows = [
        ('', 'GFLOPs', 'vs dense'),
        (f'dense {model} (plain ViT + rest)', gflops(dense), '1.000'),
        ('  ViT backbone', gflops(report['backbone_dense_gflops']), ''),
        (f'  outside the ViT ({outside})', gflops(report['outside_vit_gflops']), ''),
    ]
    if report['merge_r']:
        rows.append((f"dense + token merging (r = {report['merge_r']})",
                     gflops(report['merged_gflops']), f"{report['merged_gflops'] / dense:.3f}"))
    rows += [
        ('complete DyT (adapters, no skip)', gflops(report['complete_gflops']),
         f"{report['complete_gflops'] / dense:.3f}"),
    ]
    rows += [(f'DyT per input: {stat}', gflops(report[f'gflops_{stat}']),
              f"{report[f'gflops_{stat}'] / dense:.3f}") for stat in ('mean', 'min', 'max')]
    rates = [f'{site} {rate:.3f}' for site, rate in zip(report['sites'],
                                                      report['keep_rate_per_site'])]
    lines = [
        f'config   {args.config}',
        f'weights  {args.checkpoint or "random (no --checkpoint: untrained dispatchers)"}',
        *([f'LoRA     merged into the frozen weights of {report["lora_merged"]} blocks, '
           'as deployed'] if report['lora_merged'] else []),
        f'inputs   {report["inputs"]}',
        f'unit     one backbone input {shape} = {report["frames"]} ViT image(s) of '
        f'{report["image_tokens"]} image + {report["prefix_tokens"]} prefix tokens',
        '', format_rows(rows), '',
        f'keep rate {report["keep_rate"]:.3f} (mean over {len(rates)} sites and image tokens of '
        f'{report["num_inputs"]} inputs); per site:',
    ]
    lines += ['  ' + '  '.join(rates[i:i + 6]) for i in range(0, len(rates), 6)]
    lines += describe_offsets(report['sites'], report['threshold_offsets'])
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        model = build_model(cfg, args.checkpoint)
        merged = dyt_parts(model)[1].merge_adapters()
        report = dict(flops_report(model, cfg, args.num_samples, args.shape),
                      lora_merged=merged)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    print(describe(args, report))
    print(json_line(dict(report, config=args.config, checkpoint=args.checkpoint)))


if __name__ == '__main__':
    sys.exit(main())
