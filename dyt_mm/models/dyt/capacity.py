"""Capacities of the static-shape ``capacity`` mode: set, calibrate, and what overflowed.

In ``capacity`` mode each dispatched site processes a fixed K tokens per
sample (see :mod:`.site`), so the graph has static shapes. K is set per site,
by hand (:func:`set_capacities`) or from the kept counts on real data
(:func:`calibrate_capacities`). A sample that keeps more than K tokens at a
site loses its lowest-ranked ones there; :func:`capacity_overflow` says how
many, per site.
"""
import math
import numbers
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import nn

from .calibration import default_forward, evaluating, run_recording
from .network import dyt_network
from .recorder import DispatchRecorder
from .site import SiteCapacity, dyt_mode

Capacities = Union[int, Sequence[int]]


def _site_capacities(model: nn.Module) -> Dict[str, SiteCapacity]:
    vit = dyt_network(model)
    return {label: vit.blocks[i].capacities[site]
            for label, (i, site) in zip(vit.site_labels, vit.sites)
            if site in vit.blocks[i].capacities}


def capacities(model: nn.Module) -> Dict[str, int]:
    """Each site's K, by site label (``l3``, ``l3.mlp``); empty when none is set."""
    return {label: c.k for label, c in _site_capacities(model).items()}


def set_capacities(model: nn.Module, k: Capacities) -> List[int]:
    """Set the capacity K of every dispatch site: one int for all, or one per site in
    the network's ``sites`` order. K counts a sample's tokens at the site, prefix
    included; it may not exceed the site's tokens at the native input size.
    Returns the capacities, in site order. Resets the overflow counts."""
    vit = dyt_network(model)
    labels = vit.site_labels
    values = [k] * len(labels) if isinstance(k, numbers.Integral) else list(k)
    if len(values) != len(labels):
        raise ValueError(f'need one capacity for all sites or one per site ({len(labels)}: '
                         f'{", ".join(labels)}), got {len(values)}')
    lengths = vit.site_lengths() or [None] * len(labels)
    for label, value, length in zip(labels, values, lengths):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f'capacity of site {label} must be an int >= 1, got {value!r}')
        if length is not None and value > length:
            raise ValueError(f'capacity of site {label} must be at most its {length} tokens '
                             f'(at the native input size), got {value}')
    for (i, site), value in zip(vit.sites, values):
        vit.blocks[i].capacities[site] = SiteCapacity(int(value))
    return [int(v) for v in values]


def capacity_overflow(model: nn.Module) -> Dict[str, int]:
    """Kept tokens each site dropped because a sample kept more than K, since the
    capacities were set or :func:`reset_capacity_overflow`; only sites that dropped any
    (an empty dict: ``capacity`` mode equalled ``sparse``). Reads the device counters
    (one sync)."""
    dropped = {label: int(c.dropped.round().item())
               for label, c in _site_capacities(model).items() if c.dropped is not None}
    return {label: count for label, count in dropped.items() if count}


def reset_capacity_overflow(model: nn.Module) -> None:
    for capacity in _site_capacities(model).values():
        capacity.reset()


def calibrate_capacities(model: nn.Module, data: Iterable, quantile: float = 1.0,
                         forward: Optional[Callable] = None) -> List[int]:
    """Set each site's K to the ``quantile`` of its per-sample kept counts on ``data``.

    The model runs in eval and ``sparse`` mode (a toolbox model's ``test_step``,
    the default ``forward`` for them, runs in its ``test_mode``, by default
    sparse). ``quantile=1.0``: the largest count, so that ``capacity`` equals
    ``sparse`` on this data; lower values trade rare overflow for less work.
    K = ceil(quantile), at least 1. Returns the capacities in site order.
    """
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real) or \
            not 0.0 < quantile <= 1.0:
        raise ValueError(f'capacity quantile must lie in (0, 1], got {quantile!r}')
    vit = dyt_network(model)
    for label, (i, site) in zip(vit.site_labels, vit.sites):
        if site not in vit.blocks[i].dispatchers:
            raise ValueError(f'site {label} has no dispatcher (dispatch=None): there is no '
                             'kept count to calibrate a capacity from')
    with evaluating(model), dyt_mode(model, 'sparse'):
        calls = run_recording(DispatchRecorder(vit, site_kept=True),
                              forward or default_forward(model), data)
    # per site, every sample's kept count (prefix included)
    per_site = [torch.cat(counts).double() for counts in zip(*(c.site_kept for c in calls))]
    # ceil of the quantile; the margin keeps an exact integer from rounding up
    return set_capacities(model, [max(1, math.ceil(torch.quantile(c, quantile).item() - 1e-6))
                                  for c in per_site])
