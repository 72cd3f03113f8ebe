"""The paper ledger: each configured row of the paper's tables, computed from its config.

For every row of :mod:`.paper_tables` it builds the config's model with
uninitialised weights (only the shapes matter), counts its trainable ViT
parameters (the task head excluded and the dispatchers shown apart, as the
paper counts) and its GFLOPs per backbone input (:func:`~.flops.model_flops`:
the ViT analytically, what lies outside it traced once per kind of head), and
sets them beside the paper's figures.

A dense row (no dispatcher) is counted with nothing skipped. A dispatched row
(DyT at r) needs a trained model's masks; it is counted analytically with every
site keeping the same share k of its image tokens (what masks calibrated to k
keep), at the k that the paper's FLOPs imply, and labelled so; the figure at
k = r is shown beside it. A row *drifts* when a figure differs from the
paper's by more than 0.5 % (and does not round to the printed figure), or when
the implied k lies further than 0.1 from r (a trained model's test keep rate
departs from its target, but not by that much); a drifting row needs a reason.
"""
import contextlib
import copy
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple
from unittest import mock

import torch
from torch import nn

from ..models.dyt import dyt_mode
from . import paper_tables
from .flops import ModelFlops, model_flops
from .loading import build_model, dyt_parts, load_config

PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOLERANCE = 0.005  # relative: 0.5 %
KEEP_RATE_TOLERANCE = 0.1  # absolute, between the implied keep rate and r

# torch.nn.init's in-place initialisers, all of which the models' constructors call
INITIALISERS = ('trunc_normal_', 'normal_', 'uniform_', 'kaiming_uniform_', 'kaiming_normal_',
                'xavier_uniform_', 'xavier_normal_', 'zeros_', 'ones_', 'constant_')


@contextlib.contextmanager
def shapes_only():
    """Build models without initialising their weights: counting needs only the shapes,
    and initialising a ViT-L takes seconds."""
    with contextlib.ExitStack() as stack:
        for name in INITIALISERS:
            stack.enter_context(mock.patch.object(nn.init, name, lambda tensor, *a, **k: tensor))
        yield


class ViTInputShape(Exception):
    """Raised by :func:`traced_outside_vit`'s stand-in on an input shape it has no output for."""

    def __init__(self, shape: Tuple[int, ...]):
        super().__init__(f'no stand-in output for a ViT input of shape {shape}')
        self.shape = shape


def traced_outside_vit(model: nn.Module, cfg) -> ModelFlops:
    """:func:`~.flops.model_flops`, with the ViT replaced by a stand-in while the rest is traced.

    ``model_flops`` counts the ViT analytically and traces the model only for
    what lies outside it; the trace still runs the ViT (most of the time for a
    detector's 4096 tokens). The stand-in returns zeros of the ViT's output
    shapes, which the ViT computes on the meta device, so only the heads run.
    """
    _, vit = dyt_parts(model)
    on_meta = copy.deepcopy(vit).to('meta')
    outputs = {}

    def stand_in(images, *args, **kwargs):
        shape = tuple(int(n) for n in images.shape)
        if shape not in outputs:
            raise ViTInputShape(shape)
        return outputs[shape]

    vit.forward = stand_in  # an instance attribute: nn.Module.__call__ finds it first
    try:
        while True:
            try:
                return model_flops(model, cfg)
            except ViTInputShape as missing:
                with torch.no_grad(), dyt_mode(on_meta, 'complete'):
                    meta = on_meta(torch.empty(missing.shape, device='meta'))
                outputs[missing.shape] = meta._replace(**{
                    field: zeros_like_meta(value) for field, value in meta._asdict().items()
                    if field != 'grid'})
    finally:
        del vit.forward


def zeros_like_meta(value):
    """CPU zeros in place of meta tensors, in a tensor, a tuple of them, or None."""
    if isinstance(value, torch.Tensor):
        return torch.zeros(value.shape, dtype=value.dtype)
    if isinstance(value, tuple):
        return tuple(zeros_like_meta(v) for v in value)
    return value


def config_path(relative: str) -> str:
    """A data-file config (``configs/...``) in the checkout, or in an installed copy's
    ``.mim`` folder (setup.py copies the configs there)."""
    places = (osp.dirname(PACKAGE), osp.join(PACKAGE, '.mim'))
    for root in places:
        if osp.isfile(osp.join(root, relative)):
            return osp.join(root, relative)
    raise FileNotFoundError(f'{relative} is in neither {" nor ".join(places)}')


def rows_of(tables: Optional[Sequence[int]] = None) -> List[dict]:
    """The data file's rows of ``tables`` (all nine by default)."""
    tables = paper_tables.TABLES if tables is None else tuple(tables)
    unknown = sorted(set(tables) - set(paper_tables.TABLES))
    if unknown:
        raise ValueError(f'no table {", ".join(map(str, unknown))} in the ledger; it has Tables '
                         f'{", ".join(map(str, paper_tables.TABLES))}')
    return [row for row in paper_tables.ROWS if row['table'] in tables]


def decimals(printed: str) -> int:
    return len(printed.split('.')[1]) if '.' in printed else 0


def difference(ours: float, printed: Optional[str]) -> Optional[float]:
    """Ours relative to the paper's printed figure, in % (None where it prints none)."""
    if printed is None:
        return None
    paper = float(printed)
    if paper == 0:
        return 0.0 if round(ours, decimals(printed)) == 0 else float('inf')
    return 100 * (ours - paper) / paper


def matches(ours: float, printed: Optional[str]) -> bool:
    """Within 0.5 %, or equal at the precision the paper prints."""
    if printed is None:
        return True
    if round(ours, decimals(printed)) == float(printed):
        return True
    return abs(difference(ours, printed)) <= 100 * TOLERANCE


class Counted:
    """One built model's figures: parameters, and GFLOPs at any keep rate."""

    def __init__(self, config: str, options: Optional[dict], traced: Dict[str, ModelFlops]):
        cfg = load_config(config_path(config), options)
        cfg.model.backbone.init_cfg = None  # no pre-trained file is read
        with shapes_only():
            model = build_model(cfg)
        _, vit = dyt_parts(model)
        dispatchers = [p for name, p in vit.named_parameters()
                       if p.requires_grad and '.dispatchers.' in f'.{name}']
        self.dispatcher_params = sum(p.numel() for p in dispatchers)
        self.params = sum(p.numel() for p in vit.parameters()
                          if p.requires_grad) - self.dispatcher_params
        self.has_dispatch = vit.has_dispatch
        # what lies outside the ViT is the same for every method on one kind of head: trace it
        # once per head (tracing runs the whole model, seconds for a segmentor or detector)
        head = json.dumps({k: v for k, v in cfg.model.to_dict().items()
                           if k not in ('backbone', 'dyt_loss')}, sort_keys=True, default=str)
        head += repr((cfg.model.backbone.get('arch'), cfg.model.backbone.get('img_size')))
        vit.merge_adapters()  # LoRA counts as merged, as deployed
        known = traced.get(head)
        self.flops = traced_outside_vit(model, cfg) if known is None else ModelFlops(
            vit, known.frames, known.outside, known.num_image_tokens, known.grid)
        traced[head] = self.flops
        self.site_tokens = vit.site_tokens(self.flops.num_image_tokens).double()

    def gflops(self, keep: Optional[float] = None) -> float:
        """Nothing skipped (``keep`` None), or every site keeping ``keep`` of its tokens."""
        if keep is None:
            return self.flops.complete() / 1e9
        vit_flops = self.flops.vit_flops().per_sample(keep * self.site_tokens[None])
        return (self.flops.outside + self.flops.frames * vit_flops.item()) / 1e9

    def implied_keep(self, paper_gflops: float) -> float:
        """The keep rate at which this model costs ``paper_gflops`` (FLOPs are linear in it)."""
        none, every = self.gflops(0.0), self.gflops(1.0)
        return (paper_gflops - none) / (every - none)


def ledger_row(row: dict, counted: Counted) -> dict:
    """One data-file row with our figures, the paper's, the differences and the verdict."""
    params = counted.params / 1e6
    rate = row.get('rate')
    out = dict(key=row['key'], table=row['table'], method=row['method'], config=row['config'],
               options=row.get('options'), params_m=params,
               dispatcher_params_m=counted.dispatcher_params / 1e6,
               paper_params_m=row['params'], params_diff_pct=difference(params, row['params']),
               paper_gflops=row['gflops'], rate=rate, reason=row.get('reason'))
    problems = []
    if not matches(params, row['params']):
        problems.append('params')
    if rate is None:
        gflops, basis = counted.gflops(), 'dense' if not counted.has_dispatch else 'complete'
        out.update(implied_keep=None, gflops_at_r=None)
    else:
        implied = counted.implied_keep(float(row['gflops']))
        keep = min(max(implied, 0.0), 1.0)
        gflops, basis = counted.gflops(keep), f'keep {keep:.3f} implied'
        out.update(implied_keep=implied, gflops_at_r=counted.gflops(rate))
        if abs(implied - rate) > KEEP_RATE_TOLERANCE:
            problems.append('keep rate')
    if not matches(gflops, row['gflops']):
        problems.append('gflops')
    out.update(gflops=gflops, basis=basis, gflops_diff_pct=difference(gflops, row['gflops']),
               drift=', '.join(problems) or None)
    out['unexplained'] = bool(problems) and not row.get('reason')
    return out


def build_ledger(tables: Optional[Sequence[int]] = None, progress=None,
                 built: Optional[Dict[tuple, Counted]] = None) -> List[dict]:
    """:func:`ledger_row` of every data-file row of ``tables``; each config is built once
    (``built``: the :class:`Counted` models by config and options, kept across calls)."""
    built = {} if built is None else built
    traced, rows = {}, []
    for row in rows_of(tables):
        source = (row['config'], json.dumps(row.get('options'), sort_keys=True))
        if source not in built:
            if progress is not None:
                progress(f'[build] {row["config"]}')
            built[source] = Counted(row['config'], row.get('options'), traced)
        rows.append(ledger_row(row, built[source]))
    return rows


# ------------------------------------------------------------------------------ output
COLUMNS = [('key', 'row'), ('method', 'method'), ('params', 'params M'),
           ('paper_params_m', 'paper'), ('params_diff', 'Δ %'), ('dispatchers', 'disp. M'),
           ('gflops', 'GFLOPs'), ('paper_gflops', 'paper'), ('gflops_diff', 'Δ %'),
           ('basis', 'counted'), ('at_r', 'GFLOPs at r'), ('status', 'status')]


def _pct(value: Optional[float]) -> str:
    return '' if value is None else f'{value:+.2f}'


def status(row: dict) -> str:
    if row['drift'] is None:
        return 'ok, see note' if row['reason'] else 'ok'
    return f"drifts ({row['drift']}): " + ('NO REASON' if row['unexplained'] else 'reason given')


def cells(row: dict) -> Dict[str, str]:
    """The row's printed columns (see ``COLUMNS``)."""
    dispatchers, at_r = row['dispatcher_params_m'], row['gflops_at_r']
    return dict(key=row['key'], method=row['method'], params=f"{row['params_m']:.3f}",
                paper_params_m=row['paper_params_m'] or '',
                params_diff=_pct(row['params_diff_pct']),
                dispatchers=f'{dispatchers:.3f}' if dispatchers else '',
                gflops=f"{row['gflops']:.2f}", paper_gflops=row['paper_gflops'] or '',
                gflops_diff=_pct(row['gflops_diff_pct']), basis=row['basis'],
                at_r='' if at_r is None else f"{at_r:.2f} (r={row['rate']})",
                status=status(row))


def format_text(rows: List[dict]) -> str:
    """The ledger as aligned columns per table, then the reasons of the rows that drift."""
    lines = []
    for table in dict.fromkeys(row['table'] for row in rows):
        body = [[c[k] for k, _ in COLUMNS] for c in map(cells, (r for r in rows
                                                               if r['table'] == table))]
        header = [title for _, title in COLUMNS]
        widths = [max(len(line[i]) for line in body + [header]) for i in range(len(COLUMNS))]
        lines += [f'Table {table}', '  '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines += ['  '.join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in body]
        lines.append('')
    noted = [r for r in rows if r['drift'] is not None or r['reason']]
    if noted:
        lines.append('Why rows drift, and notes:')
        lines += [f"  {r['key']}: {r['reason'] or 'NO REASON GIVEN'}" for r in noted]
    return '\n'.join(lines).rstrip()


def format_markdown(rows: List[dict]) -> str:
    header = [title for _, title in COLUMNS] + ['reason']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        values = [cells(row)[k] for k, _ in COLUMNS] + [row['reason'] or '']
        lines.append('| ' + ' | '.join(v.replace('|', '\\|') for v in values) + ' |')
    return '\n'.join(lines) + '\n'


def format_csv(rows: List[dict]) -> str:
    import csv
    import io
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ['key'])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()})
    return buffer.getvalue()


def format_json(rows: List[dict]) -> str:
    return json.dumps(rows, indent=1) + '\n'


WRITERS = {'.md': format_markdown, '.csv': format_csv, '.json': format_json}
