"""Real speed: the same weights run ``complete`` (dense) and ``sparse``, interleaved."""
import os
import statistics
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ..models.dyt import (DyTViT, TokenDispatcher, dyt_mode, set_mode, set_threshold_offsets,
                          threshold_offsets)
from ..models.dyt.calibration import offset_keeping
from .flops import ModelFlops, count_outside_vit
from .loading import dyt_parts
from .probe import DispatchProbe

MODES = ('complete', 'sparse')


@torch.no_grad()
def calibrate_keep_rate(model: nn.Module, inputs: torch.Tensor, rate: float) -> float:
    """Set every dispatcher's threshold offset so that it keeps ``rate`` of the tokens of
    ``inputs``.

    A benchmark aid for models whose dispatchers are untrained (random
    weights). Sites are calibrated in order during one forward pass, each on
    the tokens that reach it (:func:`dyt_mm.calibrate_budget` does the same on
    a data set, in several passes). Returns the keep rate the calibrated
    model then has on ``inputs``.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f'calibration keep rate must lie in (0, 1], got {rate!r}')
    backbone, vit = dyt_parts(model)

    def set_offset(dispatcher: TokenDispatcher, args) -> None:
        tokens, num_prefix = args
        logits = dispatcher.image_logits(tokens, num_prefix)
        dispatcher.threshold_offset.fill_(offset_keeping(logits, rate, dispatcher.threshold))

    dispatchers = [m for m in vit.modules() if isinstance(m, TokenDispatcher)]
    handles = [d.register_forward_pre_hook(set_offset) for d in dispatchers]
    try:
        with dyt_mode(vit, 'masked'), DispatchProbe(model) as probe:
            backbone(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return probe.calls[0].keep_rate


@contextmanager
def _native_stderr_silenced():
    """The profiler's native side prints start/stop lines to fd 2; keep them out."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_forward_memory(run: Callable, device: torch.device) -> Dict:
    """Peak bytes allocated by one ``run()`` above what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the allocator's events
    recorded by ``torch.profiler`` (the same quantity, at tensor level: it
    does not depend on how the C library caches freed pages).
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return dict(bytes=torch.cuda.max_memory_allocated(device) - before,
                    measure='torch.cuda.max_memory_allocated above the weights and inputs')
    from torch.profiler import ProfilerActivity, profile
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU],
                                            profile_memory=True) as prof:
        run()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]']
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return dict(bytes=peak, measure='CPU allocator peak during one forward (torch.profiler '
                'memory events), weights and inputs excluded')


def _timed(run: Callable, device: torch.device) -> float:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_interleaved(runs: Dict[str, Callable], device: torch.device, num_iters: int,
                     warmup: int, progress: Optional[Callable[[], None]] = None
                     ) -> Dict[str, List[float]]:
    """Seconds of each of ``num_iters`` calls of every run, after ``warmup`` calls of each.

    Iterations alternate the order of the runs, so that all see the same
    machine load. ``progress`` is called after every timed call.
    """
    if num_iters < 1 or warmup < 0:
        raise ValueError(f'need num_iters >= 1 and warmup >= 0, got {num_iters} and {warmup}')
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(num_iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(_timed(runs[name], device))
            if progress is not None:
                progress()
    return times


def throughputs(times: Dict[str, List[float]], batch: int) -> Dict:
    """``throughput_<run>`` (inputs/s from the median) and ``seconds_<run>`` of each run."""
    report = {}
    for name, t in times.items():
        median = statistics.median(t)
        report[f'throughput_{name}'] = batch / median
        report[f'seconds_{name}'] = dict(min=min(t), median=median, max=max(t))
    return report


@torch.no_grad()
def flops_ceiling(model_or_backbone: nn.Module, inputs: torch.Tensor) -> Dict:
    """The keep rate of an eager sparse forward on ``inputs`` and what it allows.

    ``ceiling`` = complete / sparse FLOPs of the backbone at those keep
    counts: what a perfect sparse implementation would gain.
    """
    backbone, vit = dyt_parts(model_or_backbone)
    with dyt_mode(vit, 'sparse'), DispatchProbe(backbone) as probe:
        backbone(inputs)
    traced = count_outside_vit(backbone, (inputs[:1], ), vit)
    flops = ModelFlops(vit, **traced)
    sparse_flops = flops.per_input(probe.calls[0]).mean().item()
    return dict(keep_rate=probe.calls[0].keep_rate,
                ceiling=flops.complete() / sparse_flops,
                gflops_complete=flops.complete() / 1e9, gflops_sparse=sparse_flops / 1e9)


class LinearLayersAlone:
    """The dense model's linear layers alone, replayed with its weights: a GEMM floor.

    One call of ``forward`` on ``inputs`` records every ``nn.Linear`` call
    (its weight, bias and number of input rows); calling the object then runs
    exactly those matrix products, on inputs of the same shapes, and nothing
    else. In a ViT the linear layers are almost all of the work, so the time
    this takes is what the whole dense model would take in a runtime whose
    GEMM runs at PyTorch's speed and everything else were free: a bound on
    what any runtime can gain over eager PyTorch on this machine.
    """

    def __init__(self, forward: Callable, inputs: torch.Tensor):
        calls = []

        def record(layer: nn.Linear, args, output) -> None:
            calls.append((layer, args[0].numel() // layer.in_features))

        layers = [m for m in forward.modules() if isinstance(m, nn.Linear)]
        handles = [layer.register_forward_hook(record) for layer in layers]
        try:
            with torch.no_grad():
                forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
        if not calls:
            raise ValueError('the model ran no nn.Linear layer: no linear layers to replay')
        rows = {(n, layer.in_features) for layer, n in calls}
        # one zero input per shape: the values do not change a GEMM's time
        self._inputs = {shape: inputs.new_zeros(shape) for shape in rows}
        self.calls = calls

    @property
    def shapes(self) -> List[tuple]:
        """``(rows, in_features, out_features)`` of every recorded call, in order."""
        return [(n, layer.in_features, layer.out_features) for layer, n in self.calls]

    @torch.no_grad()
    def __call__(self) -> None:
        for layer, n in self.calls:
            nn.functional.linear(self._inputs[n, layer.in_features], layer.weight, layer.bias)


def speedup(times: Dict[str, List[float]], baseline: str, candidate: str) -> float:
    """How many times faster ``candidate`` ran than ``baseline`` (median times)."""
    return statistics.median(times[baseline]) / statistics.median(times[candidate])


def speedup_report(times: Dict[str, List[float]], baseline: str, candidate: str,
                   ceiling: float) -> Dict:
    """``speedup`` of ``candidate`` over ``baseline`` and ``efficiency`` = speedup / ceiling."""
    value = speedup(times, baseline, candidate)
    return dict(speedup=value, efficiency=value / ceiling)


@torch.no_grad()
def compare_modes(model_or_backbone: nn.Module, inputs: torch.Tensor, num_iters: int = 20,
                  warmup: int = 3, progress: Optional[Callable[[], None]] = None,
                  measure_memory: bool = True, compile: bool = False) -> Dict:
    """Time the backbone's ``complete`` and ``sparse`` modes on the same inputs.

    Iterations alternate the order of the two modes, after ``warmup`` rounds
    of each, so that both see the same machine load. Returns throughputs
    (backbone inputs per second, from the median iteration time), ``speedup``
    (sparse over complete), the keep rate the dispatchers had, ``ceiling``
    (complete / sparse FLOPs of the backbone at those keep counts: what a
    perfect implementation would gain), ``efficiency`` = speedup / ceiling,
    the spread of the per-iteration times, and each mode's peak memory.
    ``progress`` is called after every timed forward. ``compile`` times the
    ``torch.compile``-d backbone in both modes (each compiled on its first,
    untimed call).
    """
    backbone, vit = dyt_parts(model_or_backbone)
    device = inputs.device
    forward = backbone
    if compile:
        from ..deploy import compile_sparse
        forward = compile_sparse(backbone)

    def run_in(mode: str) -> Callable:
        def run():
            with dyt_mode(vit, mode):
                forward(inputs)
        return run

    runs = {mode: run_in(mode) for mode in MODES}
    if compile:
        for run in runs.values():
            run()  # the compilation itself is not warm-up
    ceiling = flops_ceiling(backbone, inputs)
    times = time_interleaved(runs, device, num_iters, warmup, progress)
    result = dict(batch_size=inputs.shape[0], num_iters=num_iters, warmup=warmup,
                  device=str(device), dtype=str(inputs.dtype).replace('torch.', ''),
                  threads=torch.get_num_threads(), compiled=compile,
                  **throughputs(times, inputs.shape[0]), **ceiling,
                  **speedup_report(times, 'complete', 'sparse', ceiling['ceiling']))
    if measure_memory:
        memory = {mode: peak_forward_memory(runs[mode], device) for mode in MODES}
        result.update(peak_memory_complete_mb=memory['complete']['bytes'] / 2**20,
                      peak_memory_sparse_mb=memory['sparse']['bytes'] / 2**20,
                      memory_measure=memory['sparse']['measure'])
    return result


# run -> (execution mode, whether tokens merge): the four rows of the paper's Table 5 that one
# DyT model can run with its own weights
MERGING_RUNS = {
    'dense': ('complete', False),
    'dyt': ('sparse', False),
    'tome': ('complete', True),
    'dyt_tome': ('sparse', True),
}


@torch.no_grad()
def compare_merging(model_or_backbone: nn.Module, inputs: torch.Tensor, r: int,
                    num_iters: int = 20, warmup: int = 3,
                    calibrate_rate: Optional[float] = None,
                    progress: Optional[Callable[[], None]] = None) -> Dict:
    """Time dense, DyT, ToMe (``r`` tokens merged per block) and DyT + ToMe on the same
    weights and inputs, interleaved (:func:`time_interleaved`).

    ``calibrate_rate``: set the dispatchers' threshold offsets so that DyT
    keeps this share of tokens, once without and once with merging (the
    merged tokens are other tokens); each run uses its own offsets. Returns
    per run (``dense``, ``dyt``, ``tome``, ``dyt_tome``): throughput, batch
    times, backbone GFLOPs per input from the masks of that run, keep rate,
    speedup over dense, its ceiling (the FLOPs ratio) and efficiency. The
    model's merging, offsets and mode are restored afterwards.
    """
    backbone, vit = dyt_parts(model_or_backbone)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f'tokens merged per block must be an integer >= 1, got {r!r}')
    if not isinstance(vit, DyTViT):
        raise ValueError(f'token merging is built for the plain ViT (DyTViT); this model\'s '
                         f'network is a {type(vit).__name__}')
    if not vit.has_dispatch:
        raise ValueError('comparing DyT with token merging needs a model with dispatchers '
                         '(a DyT config, not dispatch=None)')
    saved = vit.merge_r, threshold_offsets(vit), vit.mode
    offsets = {}
    try:
        for merged in (False, True):
            vit.merge_r = r if merged else 0
            if calibrate_rate is not None:
                calibrate_keep_rate(backbone, inputs, calibrate_rate)
            offsets[merged] = threshold_offsets(vit)

        def configure(name: str) -> None:
            mode, merged = MERGING_RUNS[name]
            vit.merge_r = r if merged else 0
            set_threshold_offsets(vit, offsets[merged])
            set_mode(vit, mode)

        def run_of(name: str) -> Callable:
            def run():
                configure(name)
                backbone(inputs)
            return run

        traced = count_outside_vit(backbone, (inputs[:1], ), vit)
        report = dict(batch_size=inputs.shape[0], num_iters=num_iters, warmup=warmup,
                      device=str(inputs.device), threads=torch.get_num_threads(), merge_r=r)
        for name in MERGING_RUNS:
            configure(name)
            with DispatchProbe(backbone) as probe:
                backbone(inputs)
            flops = ModelFlops(vit, traced['frames'], traced['outside'],
                               traced['num_image_tokens'])
            # complete mode runs no dispatcher: the complete model's FLOPs (merged or not)
            cost = (flops.complete() if MERGING_RUNS[name][0] == 'complete' else
                    flops.per_input(probe.calls[0]).mean().item())
            report[f'gflops_{name}'] = cost / 1e9
            report[f'keep_rate_{name}'] = probe.calls[0].keep_rate
        times = time_interleaved({name: run_of(name) for name in MERGING_RUNS}, inputs.device,
                                 num_iters, warmup, progress)
    finally:
        vit.merge_r = saved[0]
        set_threshold_offsets(vit, saved[1])
        set_mode(vit, saved[2])
    report.update(throughputs(times, inputs.shape[0]))
    for name in MERGING_RUNS:
        ceiling = report['gflops_dense'] / report[f'gflops_{name}']
        figures = speedup_report(times, 'dense', name, ceiling)
        report.update({f'ceiling_{name}': ceiling, f'speedup_{name}': figures['speedup'],
                       f'efficiency_{name}': figures['efficiency']})
    return report
