"""Export a DyT model to ONNX or torch.export (.pt2) and check it against PyTorch.

    python tools/deploy/export.py CONFIG CHECKPOINT --format onnx|pt2 --out FILE
                                  [--batch-size B] [--dynamic-batch]
                                  [--mode sparse|capacity|complete]
                                  [--capacity K | --capacity-quantile Q]
                                  [--shape H W] [--tolerance T] [--force] [--cfg-options k=v ...]

Classification: the whole model (backbone, neck, head) -> logits. Segmentation:
backbone, neck and decode head -> the decode head's logits (mmseg's tensor
mode; resizing to the image and argmax stay with the caller). The sparse
path is exported with data-dependent kept-token counts: nothing is padded,
and the file computes what eager PyTorch computes. ``--mode capacity`` exports
the static-shape form instead: each dispatched site processes K tokens per
sample, K = --capacity for every site, or (default) each site's
--capacity-quantile (default 1: the largest) of the kept counts on the inputs
the export is checked on. The capacities are printed, and a warning names the
sites where a checked input kept more than K tokens (they were dropped).

The export is checked on B real inputs (the config's test data, or random
ones, said so) and, with --dynamic-batch, on another batch size as well: the
largest absolute difference to PyTorch is printed, and a file off by more
than --tolerance is not written. An existing FILE is kept unless --force.
"""
import argparse
import os
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
import torch
from dyt_mm.analysis import build_model, load_config
from dyt_mm.analysis.reports import benchmark_inputs, json_line
from dyt_mm.analysis.toolbox import model_input, toolbox_of
from dyt_mm.deploy import (FORMATS, TensorForward, describe_overflow, export_model,
                           load_exported, max_abs_diff, set_export_capacities)
from dyt_mm.models.dyt import capacity_overflow, dyt_mode, reset_capacity_overflow
from dyt_mm.utils.cli import (argument_errors, check_config_and_checkpoint, check_out_path,
                              int_at_least, keep_rate, positive_float)
from mmengine.config import DictAction

EXPORTED_SCOPES = ('mmpretrain', 'mmseg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a DyT model (ONNX or torch.export)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('--format', required=True, choices=FORMATS)
    parser.add_argument('--out', required=True, help='file to write (.onnx or .pt2)')
    parser.add_argument('--batch-size', type=int_at_least(1), default=1,
                        help='batch size traced and checked')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='any batch size runs (checked at two sizes)')
    parser.add_argument('--mode', choices=('sparse', 'capacity', 'complete'), default='sparse',
                        help='DyT execution mode exported (capacity: static shapes, K tokens '
                        'per site; complete: the dense model)')
    capacity = parser.add_mutually_exclusive_group()
    capacity.add_argument('--capacity', type=int_at_least(1),
                          help='--mode capacity: K tokens per sample at every site')
    capacity.add_argument('--capacity-quantile', type=keep_rate,
                          help='--mode capacity: K = this quantile of each site\'s kept counts '
                          'on the checked inputs (default 1: the largest)')
    parser.add_argument('--shape', type=int_at_least(1), nargs=2, metavar=('H', 'W'),
                        help='random inputs of this size instead of the test data')
    parser.add_argument('--tolerance', type=positive_float, default=1e-4,
                        help='largest absolute difference to PyTorch allowed')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    args = parser.parse_args(argv)
    given = '--capacity' if args.capacity is not None else '--capacity-quantile' if \
        args.capacity_quantile is not None else None
    if given and args.mode != 'capacity':
        parser.error(f'{given} applies to --mode capacity only (got --mode {args.mode})')
    with argument_errors(parser):
        check_out_path(args.out, args.force, [f'.{args.format}'])
    return args


def check_batches(batch_size: int, dynamic: bool):
    """Batch sizes the export is checked at: the traced one, and another if dynamic."""
    if not dynamic:
        return [batch_size]
    return [batch_size, 2 if batch_size == 1 else 1]


def main(argv=None):
    args = parse_args(argv)
    root, extension = osp.splitext(args.out)
    partial = f'{root}.partial{extension}'  # written, checked, then renamed
    try:
        check_config_and_checkpoint(args.config, args.checkpoint)
        cfg = load_config(args.config, args.cfg_options)
        scope = cfg.get('default_scope', 'mmpretrain')
        if scope not in EXPORTED_SCOPES:
            raise ValueError(f'export.py handles classification and segmentation models '
                             f'(default_scope {" or ".join(EXPORTED_SCOPES)}); {args.config} '
                             f'has default_scope {scope!r}')
        model = build_model(cfg, args.checkpoint)
        toolbox = toolbox_of(cfg)
        batches = check_batches(args.batch_size, args.dynamic_batch)
        inputs, source = benchmark_inputs(model, cfg, max(batches), args.shape)
        inputs = model_input(toolbox, inputs)
        forward = TensorForward(model, toolbox.tensor_kwargs)
        capacities = None
        if args.mode == 'capacity':
            capacities = set_export_capacities(forward, inputs, args.capacity,
                                               args.capacity_quantile)
        export_model(forward, inputs[:args.batch_size], partial, args.mode, args.dynamic_batch)
        exported = load_exported(partial)
        diffs, overflow = {}, {}
        with dyt_mode(forward, args.mode), torch.no_grad():
            for batch in batches:
                diffs[batch] = max_abs_diff(exported(inputs[:batch]), forward(inputs[:batch]))
                if capacities:
                    overflow[batch] = capacity_overflow(forward)
                    reset_capacity_overflow(forward)
        worst = max(diffs.values())
        if not worst <= args.tolerance:
            hint = '' if args.mode == 'complete' else (
                '. A token whose gate logit lies within float rounding of its dispatcher\'s '
                'cut can be kept by one and skipped by the other: if --mode complete exports '
                'within tolerance, that is the cause here')
            raise ValueError(f'the exported model differs from PyTorch by {worst:.3g} (> '
                             f'--tolerance {args.tolerance:g}); {args.out} not written{hint}')
        os.replace(partial, args.out)
    except (ValueError, FileNotFoundError, ImportError) as error:
        raise SystemExit(f'error: {error}')
    finally:
        if osp.exists(partial):
            os.remove(partial)
    checked = ', '.join(f'batch {b}: {d:.2e}' for b, d in diffs.items())
    print(f'wrote {args.out} ({args.format}, {args.mode} mode, batch '
          f'{"dynamic" if args.dynamic_batch else args.batch_size}, '
          f'{osp.getsize(args.out) / 2**20:.1f} MiB)')
    print(f'checked on {source}; max abs diff to PyTorch: {checked}')
    report = dict(config=args.config, checkpoint=args.checkpoint, out=args.out,
                  format=args.format, mode=args.mode, dynamic_batch=args.dynamic_batch,
                  batch_size=args.batch_size, inputs=source,
                  max_abs_diff={str(b): d for b, d in diffs.items()})
    if capacities:
        print(f'capacities (tokens per sample, per site): {capacities}')
        worst = max(overflow.values(), key=lambda sites: sum(sites.values()))
        if worst:
            print(describe_overflow(worst), file=sys.stderr)
        report.update(capacities=capacities,
                      capacity_overflow={str(b): sites for b, sites in overflow.items()})
    print(json_line(report))


if __name__ == '__main__':
    sys.exit(main())
