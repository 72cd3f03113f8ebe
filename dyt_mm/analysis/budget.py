"""One trained DyT model at several compute budgets: the accuracy-FLOPs-speed curve.

For each target, the dispatchers' test-time thresholds are calibrated
(:func:`dyt_mm.calibrate_budget`) on the training split seen through the test
pipeline; then the config's test set is run through the toolbox's own
evaluator (top-1, mIoU, video top-1), and the FLOPs are counted from the masks
of that run. Throughput is timed at the end for all budgets together,
interleaved (as ``benchmark.py`` times its two modes), so that every budget
sees the same machine load.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
from matplotlib.figure import Figure
from mmengine.config import Config
from torch import nn

from ..models.dyt import (calibrate_budget, dyt_mode, set_threshold_offsets,
                          threshold_offsets)
from ..utils.loaders import calibration_loader
from .flops import ModelFlops, dispatch_summary, model_flops
from .inputs import test_loader
from .loading import dyt_parts
from .probe import DispatchProbe
from .reports import benchmark_inputs
from .speed import backbone_model_flops, flops_ceiling
from .timing import median_seconds, reliability, time_interleaved
from .toolbox import toolbox_of

UNITS = ('keep_rate', 'gflops')


@torch.no_grad()
def evaluate(model: nn.Module, cfg: Config, flops: ModelFlops) -> Dict:
    """The test set through the config's evaluator; FLOPs and keep rates from its masks."""
    from mmengine.evaluator import Evaluator
    loader = test_loader(cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
    with DispatchProbe(model) as probe:
        for batch in loader:
            evaluator.process(data_samples=model.test_step(batch), data_batch=batch)
    metrics = evaluator.evaluate(len(loader.dataset))
    return dict(metrics=metrics, **dispatch_summary(flops, probe.calls))


def check_targets(targets: Sequence[float], unit: str) -> None:
    """Refuse a bad target before minutes of work (GFLOPs: its range is checked later)."""
    if unit not in UNITS:
        raise ValueError(f'unknown target unit {unit!r}; allowed: {", ".join(UNITS)}')
    if not targets:
        raise ValueError('give at least one target')
    for target in targets:
        if unit == 'keep_rate' and not 0.0 < target <= 1.0:
            raise ValueError(f'target keep rate {target!r} is outside (0, 1]')
        if unit == 'gflops' and not target > 0:
            raise ValueError(f'target GFLOPs {target!r} must be > 0')


def name_of(point: Dict) -> str:
    target = point['target']
    return 'uncalibrated (offset 0)' if target is None else f'target {target:g}'


def budget_sweep(model: nn.Module, cfg: Config, targets: Sequence[float],
                 unit: str = 'keep_rate', per_layer: bool = False,
                 calibration_samples: Optional[int] = None, speed_batch: int = 32,
                 num_iters: int = 10, warmup: int = 2,
                 progress: Callable[[str], None] = print,
                 max_load: Optional[float] = None) -> Dict:
    """Calibrate ``model`` to each target, test it and time it; returns one point per budget.

    The first point is the model with the paper's threshold (all offsets 0,
    ``target`` None). Each point's ``speedup`` over the complete model has its
    ``ceiling``, the backbone's FLOPs ratio on the timed inputs; ``unreliable``
    says why the timings cannot be trusted, if they cannot
    (:func:`~.timing.reliability`, ``max_load`` its load limit). The model's
    own offsets are restored at the end.
    """
    check_targets(targets, unit)
    metric = toolbox_of(cfg).metric
    flops = model_flops(model, cfg)
    backbone, vit = dyt_parts(model)
    saved = threshold_offsets(model)
    calibration = list(calibration_loader(cfg, calibration_samples))
    points: List[Dict] = []
    try:
        for i, target in enumerate([None, *targets]):
            set_threshold_offsets(model, 0.0)
            point = dict(target=target)
            if target is not None:
                goal = target if unit == 'keep_rate' else dict(gflops=target)
                result = calibrate_budget(model, calibration, goal, per_layer)
                point.update(calibration_keep_rate=result['keep_rate'],
                             calibration_gflops=result['gflops'], passes=result['passes'],
                             offsets=result['offsets'])
            else:
                point['offsets'] = threshold_offsets(model).tolist()
            test = evaluate(model, cfg, flops)
            point.update(metric=float(test['metrics'][metric]), keep_rate=test['keep_rate'],
                         gflops=test['gflops_mean'], ratio_to_dense=test['ratio_to_dense'],
                         keep_rate_per_site=test['keep_rate_per_site'])
            points.append(point)
            progress(f'[{i}/{len(targets)}] {name_of(point)}: test {metric} '
                     f'{point["metric"]:.2f}, keep rate {point["keep_rate"]:.4f}, '
                     f'{point["gflops"]:.4g} GFLOPs per input')

        inputs, source = benchmark_inputs(model, cfg, speed_batch)
        progress(f'timing {len(points)} budgets and the complete model on {source} '
                 f'({num_iters} interleaved rounds)')

        def run_with(offsets, mode='sparse'):
            def run():
                set_threshold_offsets(model, offsets)
                with dyt_mode(vit, mode):
                    backbone(inputs)
            return run

        runs = {str(i): run_with(p['offsets']) for i, p in enumerate(points)}
        runs['complete'] = run_with(0.0, 'complete')
        backbone_flops = backbone_model_flops(backbone, inputs)
        for point in points:  # what each budget allows on the timed inputs
            set_threshold_offsets(model, point['offsets'])
            point['ceiling'] = flops_ceiling(backbone, inputs, backbone_flops)['ceiling']
        timings = time_interleaved(runs, inputs.device, num_iters, warmup)
    finally:
        set_threshold_offsets(model, saved)
    median = median_seconds(timings)
    for i, point in enumerate(points):
        point['throughput'] = len(inputs) / median[str(i)]
        point['speedup'] = median['complete'] / median[str(i)]
    bounds = {f'speedup of {name_of(p)}': (p['speedup'], p['ceiling']) for p in points}
    return dict(metric=metric, unit=unit, per_layer=per_layer,
                calibration_images=sum(len(b['inputs']) for b in calibration),
                complete_gflops=flops.complete() / 1e9, dense_gflops=flops.dense() / 1e9,
                throughput_complete=len(inputs) / median['complete'], speed_inputs=source,
                threads=torch.get_num_threads(), points=points,
                **reliability(timings, bounds, max_load))


def draw_curve(sweep: Dict, title: str = '') -> Figure:
    """Metric against GFLOPs per input (calibrated points joined, uncalibrated marked),
    throughput on a second axis."""
    uncalibrated, *points = sweep['points']
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    gflops = [p['gflops'] for p in points]
    ax.plot(gflops, [p['metric'] for p in points], 'o-', color='tab:blue',
            label=f'calibrated ({sweep["metric"]})')
    for p in points:
        ax.annotate(f'{p["target"]:g}', (p['gflops'], p['metric']), textcoords='offset points',
                    xytext=(4, -10), fontsize=7, color='tab:blue')
    ax.plot([uncalibrated['gflops']], [uncalibrated['metric']], '*', color='black',
            markersize=12, label=f'uncalibrated (keep {uncalibrated["keep_rate"]:.2f})')
    ax.set_xlabel('GFLOPs per input (from the test masks)')
    ax.set_ylabel(sweep['metric'], color='tab:blue')
    speed = ax.twinx()
    speed.plot(gflops, [p['throughput'] for p in points], 's--', color='tab:orange',
               label='throughput')
    speed.plot([uncalibrated['gflops']], [uncalibrated['throughput']], '*', color='tab:orange',
               markersize=10)
    speed.set_ylabel('backbone inputs / s (measured)', color='tab:orange')
    lines = ax.get_legend_handles_labels()
    more = speed.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc='center right')
    unit = 'keep rate' if sweep['unit'] == 'keep_rate' else 'GFLOPs'
    ax.set_title(title + f'\n(points labelled with the target {unit})', fontsize=8)
    fig.tight_layout()
    return fig
