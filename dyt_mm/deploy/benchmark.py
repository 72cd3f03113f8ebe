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
from .export import (TensorForward, export_model, max_abs_diff, mean_abs_diff,
                     set_export_capacities)
from .precision import check_precision, in_precision
from .quantize import quantize_onnx
from .runtime import OnnxRunner


def exported_modes(capacity_quantile: Optional[float] = None) -> Tuple[str, ...]:
    """The DyT modes exported and timed in ONNX Runtime (run ``onnx_<mode>``): dense, DyT,
    and the capacity mode when asked for."""
    return ('complete', 'sparse') + (('capacity', ) if capacity_quantile else ())


def timed_runs(capacity_quantile: Optional[float] = None,
               precision: str = 'fp32') -> Tuple[str, ...]:
    """The runs timed: eager PyTorch dense in float32 (what a user runs today), the exports,
    and the dense model's linear layers alone in PyTorch (the floor under any float32
    runtime's dense time); for int8 also those linear layers alone as an int8 ONNX file
    (the floor under the int8 exports' dense time)."""
    exports = (f'onnx_{mode}' for mode in exported_modes(capacity_quantile))
    int8_floor = ('onnx_linear_layers', ) if precision == 'int8' else ()
    return ('eager_complete', *exports, 'eager_linear_layers', *int8_floor)


class LinearLayersModule(nn.Module):
    """:class:`LinearLayersAlone`'s matrix products as a module of their inputs (one per
    input shape), to export: each product's output is summed, so that the runtime keeps
    none of them (the sums cost a fraction of a percent of the products)."""

    def __init__(self, floor: LinearLayersAlone):
        super().__init__()
        self.shapes = sorted({(n, layer.in_features) for layer, n in floor.calls})
        unique = list({id(layer): layer for layer, _ in floor.calls}.values())
        self.layers = nn.ModuleList(unique)
        index = {id(layer): i for i, layer in enumerate(unique)}
        self.calls = [(index[id(layer)], self.shapes.index((n, layer.in_features)))
                      for layer, n in floor.calls]

    def example_inputs(self) -> Tuple[torch.Tensor, ...]:
        return tuple(torch.randn(shape) for shape in self.shapes)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.layers[layer](inputs[shape]).sum()
                            for layer, shape in self.calls])


def int8_linear_layers(floor: LinearLayersAlone, network: nn.Module, folder: str,
                       threads: Optional[int] = None) -> Callable:
    """The dense model's linear layers alone as an int8 ONNX file (the base's layers
    quantised as in the int8 exports), in ONNX Runtime: ``run()``."""
    module = LinearLayersModule(floor).eval()
    inputs = module.example_inputs()
    traced, path = osp.join(folder, 'linear_layers.onnx'), osp.join(folder, 'linear_int8.onnx')
    torch.onnx.export(module, inputs, dynamo=True, verbose=False).save(traced)
    quantize_onnx(traced, path, network)
    runner = OnnxRunner(path, threads, spin=False)
    feed = {arg.name: tensor.numpy() for arg, tensor in zip(runner.session.get_inputs(), inputs)}
    return lambda: runner.session.run(None, feed)


@torch.no_grad()
def onnx_benchmark_report(model: nn.Module, cfg: Config, batch_size: int, num_iters: int,
                          warmup: int, calibrate_rate: Optional[float] = None,
                          shape: Optional[Sequence[int]] = None, threads: Optional[int] = None,
                          progress: Optional[Callable[[], None]] = None,
                          capacity_quantile: Optional[float] = None,
                          max_load: Optional[float] = None, precision: str = 'fp32') -> Dict:
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

    ``precision``: the exports' (eager dense stays float32: the baseline). int8
    quantises the frozen base's linear layers in both exports
    (:func:`~dyt_mm.deploy.quantize.quantize_onnx`); each is checked against
    its eager reference (``mean_abs_diff_<mode>``), the keep rate and ceiling
    are the int8 model's, and the bound on the speedup over eager uses the
    int8 linear layers alone in ONNX Runtime (``onnx_linear_layers``). bf16:
    ONNX Runtime's CPU provider has no bfloat16 kernels; its refusal is a
    ValueError that says so.
    """
    check_precision(precision)
    backbone, _ = dyt_parts(model)
    inputs, report = calibrated_benchmark_inputs(model, cfg, batch_size, calibrate_rate, shape)
    report['precision'] = precision
    forward = TensorForward(backbone)
    runs = {'eager_complete': lambda: _in_mode(forward, 'complete', inputs)}
    with dyt_mode(forward, 'complete'):
        linear_layers = LinearLayersAlone(forward, inputs)
    if capacity_quantile:
        report['capacities'] = set_export_capacities(forward, inputs, quantile=capacity_quantile)
    exported = in_precision(forward, precision)  # after the capacities are set: copied too
    with tempfile.TemporaryDirectory() as folder:
        for mode in exported_modes(capacity_quantile):
            path = osp.join(folder, f'{mode}.onnx')
            start = time.perf_counter()
            export_model(exported if precision == 'bf16' else forward, inputs, path, mode)
            if precision == 'int8':
                quantize_onnx(path, osp.join(folder, f'{mode}_int8.onnx'), backbone)
                path = osp.join(folder, f'{mode}_int8.onnx')
            report[f'export_seconds_{mode}'] = time.perf_counter() - start
            # no spin-waiting: the runs alternate, and each must get the cores to itself
            runner = _runner(path, threads, precision)
            outputs, expected = runner(inputs), _in_mode(exported, mode, inputs)
            report[f'max_abs_diff_{mode}'] = max_abs_diff(outputs, expected)
            if precision == 'int8':  # max: one quantisation step where a value is on its edge
                report[f'mean_abs_diff_{mode}'] = mean_abs_diff(outputs, expected)
            runs[f'onnx_{mode}'] = lambda runner=runner: runner(inputs)
        if capacity_quantile:
            report['capacity_overflow'] = capacity_overflow(exported)
            reset_capacity_overflow(exported)
        runs['eager_linear_layers'] = linear_layers
        if precision == 'int8':
            runs['onnx_linear_layers'] = int8_linear_layers(linear_layers, backbone, folder,
                                                              threads)
        ceiling = flops_ceiling(dyt_parts(exported)[0], inputs)
        timings = time_interleaved(runs, inputs.device, num_iters, warmup, progress, threads)
    report.update(batch_size=batch_size, num_iters=num_iters, warmup=warmup,
                  threads=torch.get_num_threads(), ort_threads=threads,
                  **throughputs(timings, batch_size), **ceiling,
                  **speedup_report(timings, 'onnx_complete', 'onnx_sparse', ceiling['ceiling']))
    report['speedup_over_eager'] = speedup(timings, 'eager_complete', 'onnx_sparse')
    floor = 'onnx_linear_layers' if precision == 'int8' else 'eager_linear_layers'
    report['speedup_over_eager_bound'] = ceiling['ceiling'] * speedup(
        timings, 'eager_complete', floor)
    if capacity_quantile:
        report['speedup_capacity'] = speedup(timings, 'onnx_complete', 'onnx_capacity')
    bounds = {'speedup': (report['speedup'], report['ceiling']),
              'speedup over eager': (report['speedup_over_eager'],
                                     report['speedup_over_eager_bound'])}
    report.update(reliability(timings, bounds, max_load))
    return report


def _runner(path: str, threads: Optional[int], precision: str) -> OnnxRunner:
    try:
        return OnnxRunner(path, threads, spin=False)
    except ValueError as error:  # ONNX Runtime refusing the file: no bfloat16 kernels
        raise ValueError(f'{error}; time {precision} in eager PyTorch with '
                         'tools/analysis/benchmark.py --dtype bfloat16') from None


def _in_mode(forward: nn.Module, mode: str, inputs: torch.Tensor):
    with dyt_mode(forward, mode):
        return forward(inputs)
