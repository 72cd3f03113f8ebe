"""The one timing protocol of the speed tools, and when its figures cannot be trusted.

Every speed figure dyt-mm prints (``benchmark.py``, ``benchmark_onnx.py``,
``compare_methods.py``, ``budget_sweep.py``, the demo) is timed by
:func:`time_interleaved`: ``warmup`` untimed calls of each run, then
``num_iters`` rounds that time every run once, the order rotating from round
to round, so that all runs see the same machine load and every run takes
every place in the order. A figure is the median over the rounds.

Two things make a measurement untrustworthy, and :func:`reliability` names
them so that the report says so next to the figures:

* the machine was loaded: the 1-minute load average when the timing ended
  was more than :data:`LOAD_SLACK` above the threads the timed runs use
  (other processes competed for the cores), or above a limit the caller gives;
* a speedup lies far above its ceiling (more than :data:`CEILING_MARGIN`
  times it). The FLOPs ratio bounds what skipping tokens can gain; well
  above it, the timing measured something else: a first call's allocation
  and lazy initialisation (too few warm-up rounds), or load that hit one run
  more than another.
"""
import os
import statistics
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch

CEILING_MARGIN = 1.5  # a speedup above this multiple of its ceiling is not plausible
# The runs' own threads hold the 1-minute load average at about their count, and an idle
# machine's housekeeping adds a few tenths: only more than this much above the thread count
# means that another process competed for the cores.
LOAD_SLACK = 0.5


class Timings(NamedTuple):
    """What :func:`time_interleaved` measured."""
    seconds: Dict[str, List[float]]  # per run, the seconds of each timed call
    threads: int  # the threads the runs use (torch's, or more where a runtime uses more)
    load_average: float  # the machine's 1-minute load average when the timing ended


def time_call(run: Callable, device: torch.device) -> float:
    """Seconds of one ``run()``, the device's queued work included."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_interleaved(runs: Dict[str, Callable], device: torch.device, num_iters: int,
                     warmup: int, progress: Optional[Callable[[], None]] = None,
                     threads: Optional[int] = None) -> Timings:
    """Seconds of each of ``num_iters`` calls of every run, after ``warmup`` calls of each.

    Round ``i`` times the runs starting from the ``i``-th (the order rotates),
    so that all see the same machine load. ``progress`` is called after every
    timed call. ``threads``: the threads the runs use, if more than torch's
    (a runtime with its own thread pool).
    """
    if num_iters < 1 or warmup < 0:
        raise ValueError(f'need num_iters >= 1 and warmup >= 0, got {num_iters} and {warmup}')
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    seconds: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(num_iters):
        start = i % len(names)
        for name in names[start:] + names[:start]:
            seconds[name].append(time_call(runs[name], device))
            if progress is not None:
                progress()
    return Timings(seconds, max(threads or 0, torch.get_num_threads()), os.getloadavg()[0])


def median_seconds(timings: Timings) -> Dict[str, float]:
    return {name: statistics.median(t) for name, t in timings.seconds.items()}


def throughputs(timings: Timings, batch: int) -> Dict:
    """``throughput_<run>`` (inputs/s from the median) and ``seconds_<run>`` of each run."""
    report = {}
    for name, t in timings.seconds.items():
        median = statistics.median(t)
        report[f'throughput_{name}'] = batch / median
        report[f'seconds_{name}'] = dict(min=min(t), median=median, max=max(t))
    return report


def speedup(timings: Timings, baseline: str, candidate: str) -> float:
    """How many times faster ``candidate`` ran than ``baseline`` (median times)."""
    median = median_seconds(timings)
    return median[baseline] / median[candidate]


def speedup_report(timings: Timings, baseline: str, candidate: str, ceiling: float) -> Dict:
    """``speedup`` of ``candidate`` over ``baseline`` and ``efficiency`` = speedup / ceiling."""
    value = speedup(timings, baseline, candidate)
    return dict(speedup=value, efficiency=value / ceiling)


def reliability(timings: Timings, bounds: Optional[Dict[str, Tuple[float, float]]] = None,
                max_load: Optional[float] = None) -> Dict:
    """Whether the figures of ``timings`` can be trusted; a part of the report.

    ``bounds``: ``{what: (speedup, ceiling)}`` for each speedup that has a
    ceiling. ``max_load``: the load average above which the machine counts as
    loaded (default: the threads the runs use plus ``LOAD_SLACK``). Returns ``load_average``,
    ``max_load`` and ``unreliable``: one reason per problem, empty when none.
    """
    if max_load is not None and not max_load >= 0:
        raise ValueError(f'the load limit must be a number >= 0, got {max_load!r}')
    limit = timings.threads + LOAD_SLACK if max_load is None else max_load
    reasons = []
    if timings.load_average > limit:
        what = (f'the {timings.threads} thread(s) the runs use (+{LOAD_SLACK:g})'
                if max_load is None
                else f'the limit {max_load:g}')
        reasons.append(f'the machine was loaded: 1-minute load average {timings.load_average:.2f}'
                       f' above {what}')
    for what, (value, ceiling) in (bounds or {}).items():
        if value > CEILING_MARGIN * ceiling:
            reasons.append(f'{what} {value:.3f}x is far above its ceiling {ceiling:.3f}x (over '
                           f'{CEILING_MARGIN:g}x it): not what the runs can gain; too few '
                           'warm-up rounds, or load that hit one run more than another')
    return dict(load_average=timings.load_average, max_load=limit, unreliable=reasons)
