"""What the analysis tools measure and print: a table for people, a JSON line for scripts."""
import copy
import json
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from ..models.dyt import threshold_offsets
from ..models.dyt.calibration import calibrate_keep_rate
from ..utils.cli import positive_float
from .flops import dispatch_summary, model_flops
from .toolbox import toolbox_of
from .inputs import random_backbone_inputs, run_on_inputs, run_on_test_data, test_data_missing
from .loading import build_model, dyt_parts, load_config
from .speed import compare_modes

RANDOM_CHUNK = 16  # random inputs are run in batches of at most this many


def test_mode_of(model: nn.Module) -> str:
    """The execution mode a toolbox model tests in (``sparse`` unless it says)."""
    return getattr(model, 'test_mode', 'sparse')


def flops_report(model: nn.Module, cfg: Config, num_samples: int,
                 shape: Optional[Sequence[int]] = None) -> Dict:
    """Dense, complete and per-input DyT FLOPs of ``model`` plus keep rates.

    The masks come from the first ``num_samples`` samples of the config's
    test data, or from random inputs when ``shape`` is given or the data is
    not there (``inputs`` in the result says which, and why).
    """
    if num_samples < 1:
        raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
    flops = model_flops(model, cfg, shape)
    reason = 'a --shape was given' if shape else test_data_missing(cfg)
    if reason is None:
        probe, used = run_on_test_data(model, cfg, num_samples)
        calls = probe.calls
        inputs = f'{used} samples of the config\'s test data'
        if used < num_samples:
            inputs += f' (all it holds; {num_samples} were asked for)'
    else:
        calls = []
        for start in range(0, num_samples, RANDOM_CHUNK):
            batch = random_backbone_inputs(model, min(RANDOM_CHUNK, num_samples - start), shape,
                                           seed=start)
            calls += run_on_inputs(model, batch, test_mode_of(model)).calls
        inputs = f'{num_samples} random inputs (test data not used: {reason})'
    _, vit = dyt_parts(model)
    return dict(
        counted=toolbox_of(cfg).counted, inputs=inputs,
        input_shape=list(random_backbone_inputs(model, 1, shape).shape[1:]),
        frames=flops.frames, image_tokens=flops.num_image_tokens, prefix_tokens=vit.num_prefix,
        dense_gflops=flops.dense() / 1e9, backbone_dense_gflops=flops.backbone_dense() / 1e9,
        outside_vit_gflops=flops.outside / 1e9, complete_gflops=flops.complete() / 1e9,
        merge_r=vit.merge_r,
        merged_gflops=flops.merged() / 1e9 if vit.merge_r else None,
        sites=vit.site_labels,
        # a model without dispatchers (full tuning, AdaptFormer) has no offsets
        threshold_offsets=threshold_offsets(vit).tolist() if vit.has_dispatch else [],
        **dispatch_summary(flops, calls))


def benchmark_inputs(model: nn.Module, cfg: Config, batch_size: int,
                     shape: Optional[Sequence[int]] = None) -> Tuple[torch.Tensor, str]:
    """A batch of backbone inputs from the test data (or random), and where it came from."""
    reason = 'a --shape was given' if shape else test_data_missing(cfg)
    if reason is None:
        calls = run_on_test_data(model, cfg, batch_size, keep_inputs=True)[0].calls
        if len({call.inputs.shape[1:] for call in calls}) > 1:
            reason = 'its test inputs differ in size'
        else:
            inputs = torch.cat([call.inputs for call in calls])[:batch_size]
            if len(inputs) == batch_size:
                return inputs, f'{batch_size} backbone inputs of the config\'s test data'
            reason = f'its test data has only {len(inputs)} backbone inputs'
    return (random_backbone_inputs(model, batch_size, shape),
            f'{batch_size} random inputs (test data not used: {reason})')


def calibrated_benchmark_inputs(model: nn.Module, cfg: Config, batch_size: int,
                                calibrate_rate: Optional[float] = None,
                                shape: Optional[Sequence[int]] = None,
                                dtype: torch.dtype = torch.float32
                                ) -> Tuple[torch.Tensor, Dict]:
    """Benchmark inputs (of ``dtype``), with the dispatchers calibrated on them if asked,
    and a report that says where they came from."""
    if batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {batch_size}')
    inputs, source = benchmark_inputs(model, cfg, batch_size, shape)
    inputs = inputs.to(dtype)
    report = dict(inputs=source, input_shape=list(inputs.shape[1:]))
    if calibrate_rate is not None:
        backbone, _ = dyt_parts(model)
        report['calibrated_keep_rate'] = calibrate_keep_rate(backbone, inputs, calibrate_rate)
    return inputs, report


def benchmark_report(model: nn.Module, cfg: Config, batch_size: int, num_iters: int,
                     warmup: int, calibrate_rate: Optional[float] = None,
                     shape: Optional[Sequence[int]] = None,
                     progress: Optional[Callable[[], None]] = None,
                     compile: bool = False, dtype: torch.dtype = torch.float32,
                     max_load: Optional[float] = None) -> Dict:
    """:func:`compare_modes` on the benchmark inputs, calibrated if asked.

    ``dtype``: run a copy of the model, and the inputs, in that floating type
    (bfloat16 runs on the matrix units of CPUs that have them); calibration,
    if asked, happens in that type too, since that is what decides.
    """
    if dtype != torch.float32:
        model = copy.deepcopy(model).to(dtype)
    inputs, report = calibrated_benchmark_inputs(model, cfg, batch_size, calibrate_rate, shape,
                                                 dtype)
    report.update(compare_modes(model, inputs, num_iters, warmup, progress=progress,
                                compile=compile, max_load=max_load))
    return report


def describe_offsets(sites: Sequence[str], offsets: Sequence[float]) -> List[str]:
    """Lines naming the calibrated threshold offsets, none if all are 0 (the paper's rule)."""
    if not any(offsets):
        return []
    pairs = [f'{site} {offset:+.3f}' for site, offset in zip(sites, offsets)]
    return (['calibrated threshold offsets (test-time keep rule sigmoid(logit - offset) > '
             'threshold):'] + ['  ' + '  '.join(pairs[i:i + 6]) for i in range(0, len(pairs), 6)])


def benchmark_header(args, report: Dict, runs: str) -> List[str]:
    """What a speed tool ran: config, weights, inputs and protocol (``runs``: per what)."""
    calibrated = ''
    if 'calibrated_keep_rate' in report:
        calibrated = f' (dispatchers calibrated to keep {args.calibrate_rate})'
    return [
        f'config   {args.config}',
        f'weights  {args.checkpoint or "random (no --checkpoint)"}{calibrated}',
        f'inputs   {report["inputs"]}, shape {tuple(report["input_shape"])}',
        f'run      {report["num_iters"]} timed forwards per {runs} after {report["warmup"]} '
        f'warm-up, interleaved; {report.get("device", "cpu")}, {report["threads"]} threads'
        f'{", " + report["dtype"] if report.get("dtype", "float32") != "float32" else ""}',
    ]


def seconds_cell(report: Dict, run: str) -> str:
    """``median (min-max)`` of a run's batch times."""
    t = report[f'seconds_{run}']
    return f"{t['median']:.3f} ({t['min']:.3f}-{t['max']:.3f})"


def add_max_load_argument(parser) -> None:
    """``--max-load``: the load average above which a speed tool marks its figures."""
    parser.add_argument('--max-load', type=positive_float, metavar='LOAD',
                        help='mark the speed figures unreliable when the 1-minute load average '
                        'is above this (default: the number of threads the runs use + 0.5)')


def unreliable_mark(report: Dict) -> str:
    """What to append to a speed figure that cannot be trusted (nothing if it can):
    the reasons, from the report's ``unreliable`` (:func:`~.timing.reliability`)."""
    reasons = report.get('unreliable')
    return f"  [UNRELIABLE: {'; '.join(reasons)}]" if reasons else ''


def unreliable_lines(report: Dict) -> List[str]:
    """One ``UNRELIABLE:`` line per reason the report's speed figures cannot be trusted."""
    return [f'UNRELIABLE: {reason}' for reason in report.get('unreliable', [])]


def speedup_line(report: Dict) -> str:
    flag = '  [UNRELIABLE, see below]' if report.get('unreliable') else ''
    return (f"speedup {report['speedup']:.3f}x   ceiling {report['ceiling']:.3f}x (backbone "
            f"FLOPs ratio at the measured keep rate)   efficiency {report['efficiency']:.3f}"
            f"{flag}")


def speedup_summary(report: Dict) -> str:
    """``speedup (FLOPs ceiling, efficiency)`` in brief, marked if unreliable (the demo's
    headline)."""
    return (f"{report['speedup']:.2f}x (FLOPs ceiling {report['ceiling']:.2f}x, efficiency "
            f"{report['efficiency']:.2f}){unreliable_mark(report)}")


def format_rows(rows: Sequence[Sequence]) -> str:
    """Left-aligned first column, right-aligned others."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    return '\n'.join('  '.join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(row)).rstrip() for row in cells)


def json_line(report: Dict) -> str:
    return json.dumps(report, sort_keys=True, default=str)


def run_speed_tool(args, timed_runs: int, measure: Callable, describe: Callable) -> None:
    """What the speed tools share: threads, model, a progress bar over the timed calls
    (``timed_runs`` per iteration), the table and the JSON line.

    ``measure(model, cfg, progress)`` returns the report; ``describe(args, report)``
    the table, which is followed by a line per reason the figures cannot be
    trusted. Bad input ends the tool with a one-line error.
    """
    from mmengine.utils import ProgressBar
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config, args.cfg_options)
        model = build_model(cfg, args.checkpoint)
        bar = ProgressBar(timed_runs * args.num_iters, file=sys.stderr)
        report = measure(model, cfg, bar.update)
    except (ValueError, FileNotFoundError, ImportError) as error:
        raise SystemExit(f'error: {error}')
    sys.stderr.write('\n')
    print('\n'.join([describe(args, report), *unreliable_lines(report)]))
    print(json_line(dict(report, config=args.config, checkpoint=args.checkpoint)))
