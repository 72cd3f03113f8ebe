"""Per-layer keep rates over training, from a run's json scalar log.

:class:`~dyt_mm.engine.DispatchMetricsHook` logs ``keep_rate_l{i}`` (the share of
image tokens that site ``i``'s dispatcher kept) at every logged training iteration
and after every validation. The toolboxes' ``analyze_logs plot_curve`` draws a few
of those keys as curves; this draws all of them at once, sites by log points, so
that where along the depth the tokens are dropped, and how that settles during
training, reads off one picture. ``tools/analysis/plot_keep_rates.py`` is the CLI.
"""
import json
import re
from typing import List, NamedTuple

import numpy as np
from matplotlib.figure import Figure

PHASES = ('train', 'val')
SITE_KEY = re.compile(r'^keep_rate_l(\d+)$')


class KeepRates(NamedTuple):
    rates: np.ndarray  # (sites, points)
    points: List[int]  # the x of each column: the iteration (train) or evaluation number (val)
    x_label: str


def read_keep_rates(path: str, phase: str = 'train') -> KeepRates:
    """The per-site keep rates of ``phase`` in an mmengine json log (``vis_data/scalars.json``
    or ``vis_data/<timestamp>.json``: one json object per line; training lines carry ``iter``,
    validation lines do not)."""
    if phase not in PHASES:
        raise ValueError(f'phase must be one of {", ".join(PHASES)}, got {phase!r}')
    columns, points = [], []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}: not json ({error.msg})') from None
            sites = {int(m.group(1)): v for k, v in entry.items() if (m := SITE_KEY.match(k))}
            if not sites or ('iter' in entry) != (phase == 'train'):
                continue
            if sorted(sites) != list(range(len(sites))):
                raise ValueError(f'{path}, line {number}: keep rates of sites {sorted(sites)}, '
                                 'not 0 ... N-1')
            if columns and len(sites) != len(columns[0]):
                raise ValueError(f'{path}, line {number}: {len(sites)} sites, earlier lines '
                                 f'{len(columns[0])}')
            columns.append([sites[i] for i in range(len(sites))])
            points.append(entry['step'] if phase == 'train' else len(points) + 1)
    if not columns:
        raise ValueError(f'{path} has no {phase} line with per-layer keep rates (keep_rate_l0, '
                         '...): was the run trained with DyTHook or DispatchMetricsHook?')
    return KeepRates(np.array(columns).T, points,
                     'iteration' if phase == 'train' else 'validation')


def draw_keep_rates(keep: KeepRates, title: str = '') -> Figure:
    """A heat map: one row per dispatch site (layer 0 at the top), one column per log
    point, the colour the kept share of image tokens (0 to 1)."""
    sites, count = keep.rates.shape
    figure = Figure(figsize=(min(12.0, 3.0 + 0.12 * count), 1.8 + 0.3 * sites))
    axes = figure.add_subplot()
    image = axes.imshow(keep.rates, aspect='auto', vmin=0.0, vmax=1.0, cmap='viridis',
                        interpolation='nearest')
    ticks = np.linspace(0, count - 1, min(count, 8)).round().astype(int)
    axes.set_xticks(ticks, [str(keep.points[i]) for i in ticks])
    axes.set_yticks(range(sites), [str(i) for i in range(sites)])
    axes.set_xlabel(keep.x_label)
    axes.set_ylabel('layer (dispatch site)')
    axes.set_title(title or 'kept share of image tokens per layer')
    figure.colorbar(image, ax=axes, label='keep rate')
    figure.tight_layout()
    return figure
