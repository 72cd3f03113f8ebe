"""Real speed: the same weights run ``complete`` (dense) and ``sparse``, interleaved
(:mod:`.timing`), against the FLOPs ceiling; and what each run holds in memory."""
import os
import sys
from contextlib import contextmanager
from typing import Callable, Dict, Optional

import torch
from torch import nn

from ..models.dyt import dyt_mode
from .flops import ModelFlops, count_outside_vit
from .loading import dyt_parts
from .probe import DispatchProbe
from .timing import reliability, speedup_report, throughputs, time_interleaved

MODES = ('complete', 'sparse')


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


def backbone_model_flops(backbone: nn.Module, inputs: torch.Tensor) -> ModelFlops:
    """The FLOPs counter of ``backbone`` alone, at the size of ``inputs``."""
    _, vit = dyt_parts(backbone)
    return ModelFlops(vit, **count_outside_vit(backbone, (inputs[:1], ), vit))


@torch.no_grad()
def flops_ceiling(model_or_backbone: nn.Module, inputs: torch.Tensor,
                  flops: Optional[ModelFlops] = None) -> Dict:
    """The keep rate of an eager sparse forward on ``inputs`` and what it allows.

    ``ceiling`` = complete / sparse FLOPs of the backbone at those keep
    counts: what a perfect sparse implementation would gain. ``flops``: the
    backbone's counter (:func:`backbone_model_flops`), if already made.
    """
    backbone, vit = dyt_parts(model_or_backbone)
    with dyt_mode(vit, 'sparse'), DispatchProbe(backbone) as probe:
        backbone(inputs)
    flops = flops or backbone_model_flops(backbone, inputs)
    sparse_flops = flops.per_input(probe.calls[0]).mean().item()
    return dict(keep_rate=probe.calls[0].keep_rate,
                ceiling=flops.complete() / sparse_flops,
                gflops_complete=flops.complete() / 1e9, gflops_sparse=sparse_flops / 1e9)


@torch.no_grad()
def compare_modes(model_or_backbone: nn.Module, inputs: torch.Tensor, num_iters: int = 20,
                  warmup: int = 3, progress: Optional[Callable[[], None]] = None,
                  measure_memory: bool = True, compile: bool = False,
                  max_load: Optional[float] = None) -> Dict:
    """Time the backbone's ``complete`` and ``sparse`` modes on the same inputs.

    The two modes are timed interleaved (:func:`~.timing.time_interleaved`),
    after ``warmup`` rounds of each, so that both see the same machine load.
    Returns throughputs (backbone inputs per second, from the median iteration
    time), ``speedup`` (sparse over complete), the keep rate the dispatchers
    had, ``ceiling`` (complete / sparse FLOPs of the backbone at those keep
    counts: what a perfect implementation would gain), ``efficiency`` =
    speedup / ceiling, the spread of the per-iteration times, each mode's peak
    memory, and ``unreliable``: why the figures cannot be trusted, if they
    cannot (:func:`~.timing.reliability`; ``max_load``: its load limit).
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
    timings = time_interleaved(runs, device, num_iters, warmup, progress)
    figures = speedup_report(timings, 'complete', 'sparse', ceiling['ceiling'])
    result = dict(batch_size=inputs.shape[0], num_iters=num_iters, warmup=warmup,
                  device=str(device), dtype=str(inputs.dtype).replace('torch.', ''),
                  threads=torch.get_num_threads(), compiled=compile,
                  **throughputs(timings, inputs.shape[0]), **ceiling, **figures,
                  **reliability(timings, dict(speedup=(figures['speedup'], ceiling['ceiling'])),
                                max_load))
    if measure_memory:
        memory = {mode: peak_forward_memory(runs[mode], device) for mode in MODES}
        result.update(peak_memory_complete_mb=memory['complete']['bytes'] / 2**20,
                      peak_memory_sparse_mb=memory['sparse']['bytes'] / 2**20,
                      memory_measure=memory['sparse']['measure'])
    return result
