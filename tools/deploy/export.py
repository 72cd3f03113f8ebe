"""Export a DyT model to ONNX or torch.export (.pt2) and check it against PyTorch.

    python tools/deploy/export.py CONFIG CHECKPOINT --format onnx|pt2 --out FILE
                                  [--batch-size B] [--dynamic-batch]
                                  [--mode sparse|capacity|complete] [--precision fp32|bf16|int8]
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

``--precision int8`` writes an ONNX file whose frozen-base linear layers are quantised to
int8 by ONNX Runtime's dynamic quantisation (adapters, dispatchers, norms and heads stay
float32; dyt_mm.deploy.quantize), checked against its eager reference (the same arithmetic
in PyTorch, dyt_mm.deploy.precision.Int8Linear): a value within float rounding of a
quantisation step can round the other way in the two runtimes, so --tolerance bounds the
mean absolute difference for int8 (default 1e-3), the largest one otherwise. ``--precision
bf16`` exports the DyT network in bfloat16 (its input and outputs stay float32); ONNX Runtime's
CPU provider has no bfloat16 kernels, so it is a .pt2 file (an ONNX file that ONNX Runtime
cannot load is refused, with its message).

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
from dyt_mm.deploy import (FORMATS, PRECISIONS, TensorForward, describe_overflow,
                           export_model, in_precision, load_exported,
                           max_abs_diff, mean_abs_diff, quantize_onnx, set_export_capacities)
from dyt_mm.models.dyt import capacity_overflow, dyt_mode, reset_capacity_overflow
from dyt_mm.models.dyt.network import dyt_network
from dyt_mm.utils.cli import (argument_errors, check_config_and_checkpoint, check_out_path,
                              int_at_least, keep_rate, positive_float)
from mmengine.config import DictAction

EXPORTED_SCOPES = ('mmpretrain', 'mmseg')
DEFAULT_TOLERANCES = dict(fp32=1e-4, bf16=1e-2, int8=1e-3)


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
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='int8: the frozen base\'s linear layers quantised (ONNX only); '
                        'bf16: the DyT network in bfloat16')
    parser.add_argument('--shape', type=int_at_least(1), nargs=2, metavar=('H', 'W'),
                        help='random inputs of this size instead of the test data')
    parser.add_argument('--tolerance', type=positive_float,
                        help='largest absolute difference to PyTorch allowed (default 1e-4; '
                        'int8: the mean absolute difference to its eager reference, default '
                        '1e-3; bf16: default 1e-2)')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    args = parser.parse_args(argv)
    given = '--capacity' if args.capacity is not None else '--capacity-quantile' if \
        args.capacity_quantile is not None else None
    if given and args.mode != 'capacity':
        parser.error(f'{given} applies to --mode capacity only (got --mode {args.mode})')
    if args.precision == 'int8' and args.format != 'onnx':
        parser.error(f'--precision int8 is ONNX Runtime\'s quantisation: it needs --format onnx '
                     f'(got --format {args.format})')
    if args.tolerance is None:
        args.tolerance = DEFAULT_TOLERANCES[args.precision]
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
        # int8 quantises the float32 file; bf16 traces the model in bfloat16
        traced_precision = 'bf16' if args.precision == 'bf16' else 'fp32'
        forward = TensorForward(in_precision(model, traced_precision), toolbox.tensor_kwargs)
        capacities = None
        if args.mode == 'capacity':
            capacities = set_export_capacities(forward, inputs, args.capacity,
                                               args.capacity_quantile)
        traced = f'{root}.partial.float32{extension}' if args.precision == 'int8' else partial
        export_model(forward, inputs[:args.batch_size], traced, args.mode, args.dynamic_batch)
        if args.precision == 'int8':
            quantize_onnx(traced, partial, dyt_network(forward))
            os.remove(traced)
            forward = in_precision(forward, 'int8')  # its eager reference
        try:
            exported = load_exported(partial)
        except ValueError as error:  # ONNX Runtime refusing the file (bfloat16 kernels)
            raise ValueError(f'{error}; {args.out} not written') from None
        measure = mean_abs_diff if args.precision == 'int8' else max_abs_diff
        diffs, overflow = {}, {}
        with dyt_mode(forward, args.mode), torch.no_grad():
            for batch in batches:
                diffs[batch] = measure(exported(inputs[:batch]), forward(inputs[:batch]))
                if capacities:
                    overflow[batch] = capacity_overflow(forward)
                    reset_capacity_overflow(forward)
        worst = max(diffs.values())
        if not worst <= args.tolerance:
            hint = '' if args.mode == 'complete' else (
                '. A token whose gate logit lies within float rounding of its dispatcher\'s '
                'cut can be kept by one and skipped by the other: if --mode complete exports '
                'within tolerance, that is the cause here')
            what = 'on average ' if args.precision == 'int8' else ''
            raise ValueError(f'the exported model differs from PyTorch {what}by {worst:.3g} (> '
                             f'--tolerance {args.tolerance:g}); {args.out} not written{hint}')
        os.replace(partial, args.out)
    except (ValueError, FileNotFoundError, ImportError) as error:
        raise SystemExit(f'error: {error}')
    finally:
        for leftover in (partial, f'{root}.partial.float32{extension}'):
            if osp.exists(leftover):
                os.remove(leftover)
    checked = ', '.join(f'batch {b}: {d:.2e}' for b, d in diffs.items())
    print(f'wrote {args.out} ({args.format}, {args.mode} mode, {args.precision}, batch '
          f'{"dynamic" if args.dynamic_batch else args.batch_size}, '
          f'{osp.getsize(args.out) / 2**20:.1f} MiB)')
    against = ('mean abs diff to its eager int8 reference' if args.precision == 'int8' else
               'max abs diff to PyTorch')
    print(f'checked on {source}; {against}: {checked}')
    report = dict(config=args.config, checkpoint=args.checkpoint, out=args.out,
                  format=args.format, mode=args.mode, precision=args.precision,
                  dynamic_batch=args.dynamic_batch,
                  batch_size=args.batch_size, inputs=source,
                  **{'mean_abs_diff' if args.precision == 'int8' else 'max_abs_diff':
                     {str(b): d for b, d in diffs.items()}})
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
