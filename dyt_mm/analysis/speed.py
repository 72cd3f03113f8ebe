"""Real speed: the same weights run ``complete`` (dense) and ``sparse``, interleaved."""
import os
import statistics
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ..models.dyt import TokenDispatcher, dyt_mode
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
    return probe.calls[0].masks.mean().item()


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


@torch.no_grad()
def interleaved_times(runs: Dict[str, Callable], device: torch.device, num_iters: int,
                      warmup: int, progress: Optional[Callable[[], None]] = None
                      ) -> Dict[str, List[float]]:
    """Seconds of each of ``num_iters`` calls of every run, after ``warmup`` untimed rounds.

    Every iteration calls every run once, in alternating order, so that all
    runs see the same machine load. ``progress`` is called after each call.
    """
    if num_iters < 1 or warmup < 0:
        raise ValueError(f'need num_iters >= 1 and warmup >= 0, got {num_iters} and {warmup}')
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: Dict[str, List[float]] = {name: [] for name in runs}
    order = list(runs)
    for i in range(num_iters):
        for name in (order if i % 2 == 0 else order[::-1]):
            times[name].append(_timed(runs[name], device))
            if progress is not None:
                progress()
    return times


@torch.no_grad()
def compare_modes(model_or_backbone: nn.Module, inputs: torch.Tensor, num_iters: int = 20,
                  warmup: int = 3, progress: Optional[Callable[[], None]] = None,
                  measure_memory: bool = True) -> Dict:
    """Time the backbone's ``complete`` and ``sparse`` modes on the same inputs.

    Iterations alternate the order of the two modes, after ``warmup`` rounds
    of each, so that both see the same machine load. Returns throughputs
    (backbone inputs per second, from the median iteration time), ``speedup``
    (sparse over complete), the keep rate the dispatchers had, ``ceiling``
    (complete / sparse FLOPs of the backbone at those keep counts: what a
    perfect implementation would gain), ``efficiency`` = speedup / ceiling,
    the spread of the per-iteration times, and each mode's peak memory.
    ``progress`` is called after every timed forward.
    """
    backbone, vit = dyt_parts(model_or_backbone)
    device = inputs.device

    def run_in(mode: str) -> Callable:
        def run():
            with dyt_mode(vit, mode):
                backbone(inputs)
        return run

    runs = {mode: run_in(mode) for mode in MODES}
    with DispatchProbe(backbone) as probe:
        runs['sparse']()
    times = interleaved_times(runs, device, num_iters, warmup, progress)

    traced = count_outside_vit(backbone, (inputs[:1], ), vit)
    flops = ModelFlops(vit, traced['frames'], traced['outside'], traced['num_image_tokens'])
    sparse_flops = flops.per_input(probe.calls[0]).mean().item()
    median = {mode: statistics.median(t) for mode, t in times.items()}
    batch = inputs.shape[0]
    speedup = median['complete'] / median['sparse']
    ceiling = flops.complete() / sparse_flops
    result = dict(
        batch_size=batch, num_iters=num_iters, warmup=warmup, device=str(device),
        threads=torch.get_num_threads(),
        throughput_complete=batch / median['complete'],
        throughput_sparse=batch / median['sparse'],
        speedup=speedup, keep_rate=probe.calls[0].masks.mean().item(), ceiling=ceiling,
        efficiency=speedup / ceiling,
        gflops_complete=flops.complete() / 1e9, gflops_sparse=sparse_flops / 1e9,
        seconds_complete=dict(min=min(times['complete']), median=median['complete'],
                              max=max(times['complete'])),
        seconds_sparse=dict(min=min(times['sparse']), median=median['sparse'],
                            max=max(times['sparse'])),
    )
    if measure_memory:
        memory = {mode: peak_forward_memory(runs[mode], device) for mode in MODES}
        result.update(peak_memory_complete_mb=memory['complete']['bytes'] / 2**20,
                      peak_memory_sparse_mb=memory['sparse']['bytes'] / 2**20,
                      memory_measure=memory['sparse']['measure'])
    return result
