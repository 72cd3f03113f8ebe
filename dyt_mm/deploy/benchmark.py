"""Dense vs DyT exported to ONNX, in ONNX Runtime, against eager PyTorch in the same run."""
import os.path as osp
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from ..analysis.gemm_floor import LinearLayersAlone
from ..analysis.loading import dyt_parts
from ..analysis.reports import calibrated_benchmark_inputs
from ..analysis.speed import flops_ceiling
from ..analysis.timing import (reliability, speedup, speedup_report, throughputs,
                               time_interleaved)
from ..models.dyt import capacity_overflow, dyt_mode, reset_capacity_overflow
from .export import TensorForward, export_model, max_abs_diff, set_export_capacities
from .runtime import OnnxRunner


def exported_modes(capacity_quantile: Optional[float] = None) -> Tuple[str, ...]:
    """The DyT modes exported and timed in ONNX Runtime (run ``onnx_<mode>``): dense, DyT,
    and the capacity mode when asked for."""
    return ('complete', 'sparse') + (('capacity', ) if capacity_quantile else ())


def timed_runs(capacity_quantile: Optional[float] = None) -> Tuple[str, ...]:
    """The runs timed: eager PyTorch dense (what a user runs today), the exports, and the
    dense model's linear layers alone in PyTorch (the floor under any runtime's dense
    time)."""
    exports = (f'onnx_{mode}' for mode in exported_modes(capacity_quantile))
    return ('eager_complete', *exports, 'eager_linear_layers')


@torch.no_grad()
def onnx_benchmark_report(model: nn.Module, cfg: Config, batch_size: int, num_iters: int,
                          warmup: int, calibrate_rate: Optional[float] = None,
                          shape: Optional[Sequence[int]] = None, threads: Optional[int] = None,
                          progress: Optional[Callable[[], None]] = None,
                          capacity_quantile: Optional[float] = None,
                          max_load: Optional[float] = None) -> Dict:
    """The model's DyT backbone exported twice (complete and sparse mode, batch fixed to
    ``batch_size``) and timed in ONNX Runtime, interleaved with eager dense PyTorch.

    ``capacity_quantile``: also export the ``capacity`` mode, each site's K
    calibrated to that quantile of its kept counts on the inputs
    (``capacities``; ``capacity_overflow``: kept tokens it drops on them), and
    time it (``speedup_capacity`` over the dense export).

    ``speedup`` and ``efficiency`` compare the two exports (the same protocol
    and FLOPs ceiling as :func:`~dyt_mm.analysis.compare_modes`);
    ``speedup_over_eager`` is the DyT export against eager dense PyTorch;
    ``speedup_over_eager_bound`` = ceiling x (eager dense time / the time of
    the dense model's linear layers alone, :class:`LinearLayersAlone`) is
    what a runtime whose GEMM is as fast as PyTorch's could reach at most.
    ``unreliable``: why the timings cannot be trusted, if they cannot
    (:func:`~dyt_mm.analysis.timing.reliability`: the load, with ``max_load``
    as its limit, and both speedups against their ceilings).
    """
    backbone, _ = dyt_parts(model)
    inputs, report = calibrated_benchmark_inputs(model, cfg, batch_size, calibrate_rate, shape)
    forward = TensorForward(backbone)
    runs = {'eager_complete': lambda: _in_mode(forward, 'complete', inputs)}
    with dyt_mode(forward, 'complete'):
        linear_layers = LinearLayersAlone(forward, inputs)
    if capacity_quantile:
        report['capacities'] = set_export_capacities(forward, inputs, quantile=capacity_quantile)
    with tempfile.TemporaryDirectory() as folder:
        for mode in exported_modes(capacity_quantile):
            path = osp.join(folder, f'{mode}.onnx')
            start = time.perf_counter()
            export_model(forward, inputs, path, mode)
            report[f'export_seconds_{mode}'] = time.perf_counter() - start
            # no spin-waiting: the runs alternate, and each must get the cores to itself
            runner = OnnxRunner(path, threads, spin=False)
            report[f'max_abs_diff_{mode}'] = max_abs_diff(runner(inputs),
                                                          _in_mode(forward, mode, inputs))
            runs[f'onnx_{mode}'] = lambda runner=runner: runner(inputs)
        if capacity_quantile:
            report['capacity_overflow'] = capacity_overflow(forward)
            reset_capacity_overflow(forward)
        runs['eager_linear_layers'] = linear_layers
        ceiling = flops_ceiling(backbone, inputs)
        timings = time_interleaved(runs, inputs.device, num_iters, warmup, progress, threads)
    report.update(batch_size=batch_size, num_iters=num_iters, warmup=warmup,
                  threads=torch.get_num_threads(), ort_threads=threads,
                  **throughputs(timings, batch_size), **ceiling,
                  **speedup_report(timings, 'onnx_complete', 'onnx_sparse', ceiling['ceiling']))
    report['speedup_over_eager'] = speedup(timings, 'eager_complete', 'onnx_sparse')
    report['speedup_over_eager_bound'] = ceiling['ceiling'] * speedup(
        timings, 'eager_complete', 'eager_linear_layers')
    if capacity_quantile:
        report['speedup_capacity'] = speedup(timings, 'onnx_complete', 'onnx_capacity')
    bounds = {'speedup': (report['speedup'], report['ceiling']),
              'speedup over eager': (report['speedup_over_eager'],
                                     report['speedup_over_eager_bound'])}
    report.update(reliability(timings, bounds, max_load))
    return report


def _in_mode(forward: nn.Module, mode: str, inputs: torch.Tensor):
    with dyt_mode(forward, mode):
        return forward(inputs)
