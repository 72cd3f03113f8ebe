"""The one dispatched site: dispatcher + adapter + branch, in four execution modes.

A dispatched *site* is a residual branch ``f`` (an MLP, an attention, or a
whole layer) with its own dispatcher and a parallel adapter::

    x' = x + mask * f(x) + adapter(x)

Every block kind (the plain ViT's :class:`~.block.DyTBlock`, the Swin block,
...) runs its sites through :func:`run_site`, so dispatch, adapters and the
sparse gather exist once. Execution modes (same weights, same outputs in eval):

* ``masked``   -- training form: ``f`` runs on every token, its output is
  multiplied by the (straight-through) mask;
* ``complete`` -- nothing is skipped (the self-distillation teacher);
* ``sparse``   -- inference form: only the kept tokens of the whole batch are
  gathered, ``f`` runs on them, and the result is scattered back;
* ``capacity`` -- the sparse form with static shapes (TensorRT engines, CUDA
  graphs): each site processes a fixed K tokens per sample, its kept tokens
  with the highest gate logits. It equals ``sparse`` whenever no sample keeps
  more than K; otherwise the lowest-ranked kept tokens skip the branch, and
  the site counts them (:class:`SiteCapacity`).
"""
from contextlib import contextmanager
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .registry import check_choice

MODES = ('masked', 'complete', 'sparse', 'capacity')


class DispatchedBlock(nn.Module):
    """Base of every block with dispatched sites: holds the execution mode.

    :func:`~dyt_mm.models.dyt.set_mode`, calibration and export find blocks
    by this class, whatever architecture they belong to. Subclasses hold
    ``dispatchers`` and ``adapters`` (``nn.ModuleDict`` keyed by site) and run
    each site with :meth:`run_site`. ``capacities`` holds each site's
    :class:`SiteCapacity` for the ``capacity`` mode (set by
    :func:`~dyt_mm.models.dyt.set_capacities`).
    """

    def __init__(self):
        super().__init__()
        self.mode = 'masked'
        self.capacities: Dict[str, SiteCapacity] = {}

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        check_choice('execution mode', value, MODES)
        self._mode = value

    def run_site(self, site: str, branch: Callable, x: torch.Tensor, num_prefix: int,
                 drop_path: Callable, token_mixing: bool = False
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:func:`run_site` with this block's mode and the site's dispatcher and adapter."""
        dispatcher = self.dispatchers[site] if site in self.dispatchers else None
        adapter = self.adapters[site] if site in self.adapters else None
        capacity = self.capacities.get(site)
        if self.mode == 'capacity' and dispatcher is not None and capacity is None:
            raise ValueError(f"capacity mode needs each site's capacity; the {site!r} site of "
                             f'this {type(self).__name__} has none: set them with '
                             'dyt_mm.set_capacities(model, K) or dyt_mm.calibrate_capacities')
        return run_site(self.mode, branch, x, num_prefix, dispatcher, adapter, drop_path,
                        token_mixing, capacity)


def set_mode(model: nn.Module, mode: str) -> str:
    """Set the execution mode (masked / complete / sparse / capacity) of every dispatched block.

    Returns the mode the model had before; a model without DyT blocks is an error.
    """
    blocks = [m for m in model.modules() if isinstance(m, DispatchedBlock)]
    if not blocks:
        raise ValueError(f'{type(model).__name__} contains no DyT block')
    previous = blocks[0].mode
    for block in blocks:
        block.mode = mode
    return previous


@contextmanager
def dyt_mode(model: nn.Module, mode: str):
    """Run a block of code with ``model`` in ``mode``, then restore the old mode."""
    previous = set_mode(model, mode)
    try:
        yield model
    finally:
        set_mode(model, previous)


class SiteCapacity:
    """The tokens per sample a site processes in ``capacity`` mode, and those it dropped.

    ``k`` counts the site's whole sequence, prefix included. ``dropped`` is
    the number of kept tokens that skipped the branch because their sample
    kept more than ``k`` (summed on the device since the last :meth:`reset`:
    counting costs no host sync; traced graphs do not count).
    """

    def __init__(self, k: int):
        self.k = k
        self.dropped: Optional[torch.Tensor] = None

    def count_dropped(self, kept_per_sample: torch.Tensor, k: int) -> None:
        if torch.compiler.is_compiling():
            return
        dropped = (kept_per_sample - k).clamp(min=0).sum()
        self.dropped = dropped if self.dropped is None else self.dropped + dropped

    def reset(self) -> None:
        self.dropped = None

    def __repr__(self) -> str:
        return f'SiteCapacity(k={self.k})'


class KeptTokens(NamedTuple):
    """Where gathered tokens sit when packed per sample.

    The tokens themselves travel as flat rows ``(R, C)`` (the gathered tokens
    of the batch, in order), so that every token-wise layer runs on exactly
    those rows. Only attention needs them per sample: row ``i`` goes to slot
    ``slot[i]`` of sample ``sample[i]`` in a ``(B, K)`` layout whose ``valid``
    key mask hides the padding (and, in capacity mode, the gathered tokens
    that were not kept).
    """
    sample: torch.Tensor
    slot: torch.Tensor
    valid: torch.Tensor
    token: torch.Tensor  # each row's index in its sample's sequence (for rotary positions)


class Gathered(NamedTuple):
    """The flat token rows a site's branch runs on, and what it needs to know of them."""
    rows: torch.Tensor
    kept: Optional[KeptTokens]  # the per-sample layout, for token-mixing branches
    weight: Optional[torch.Tensor]  # (R,) factor of each row's output: 0 for filler rows


def kept_rows(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices ``(K,)`` of the kept tokens of a ``(B, N)`` mask, in order.

    ``K`` depends on the data. Eager PyTorch reads it from the device (a host
    sync); ``torch.export`` and ``torch.compile`` carry it as an unbacked
    size, so the graph has no branch on it.
    """
    return mask.reshape(-1).nonzero().squeeze(1)


def add_rows(out: torch.Tensor, rows: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """``out`` with ``update`` added in place at the flat token ``rows``.

    ``out`` must be a fresh tensor of the caller's (the residual sum): the add
    is done in place, which saves a copy of the whole batch per block.
    """
    # A sum can inherit transposed strides (patch embedding without a class token).
    out = out.contiguous()
    out.view(-1, out.shape[-1]).index_add_(0, rows, update)
    return out


def keeps_every_token(rows: torch.Tensor, mask: torch.Tensor) -> bool:
    """Eager only: whether ``rows`` are all the tokens (common in early layers).

    Eager PyTorch already knows the count, and then skips the gathered copy,
    which would only cost time and push peak memory above the complete mode's.
    Traced, the general path serves every count, so the graph has no branch on
    data (False without looking at the count).
    """
    return not torch.compiler.is_compiling() and rows.shape[0] == mask.numel()


def sparse_layout(mask: torch.Tensor, rows: torch.Tensor) -> KeptTokens:
    """Per-sample layout of the kept ``rows`` of ``mask``: each sample's kept tokens
    in their original order, padded to the largest count."""
    B, N = mask.shape
    counts = mask.sum(dim=1).long()
    sample = torch.div(rows, N, rounding_mode='floor')
    slot = torch.arange(rows.shape[0], device=mask.device) - (counts.cumsum(0) - counts)[sample]
    # The largest count as a size that tracing carries like the row count (a
    # nonzero: the slots some sample fills), not a Python int from .item().
    slots = (torch.arange(N, device=mask.device) < counts.max()).nonzero().squeeze(1)
    valid = (slots < counts[:, None]).to(mask.dtype)
    return KeptTokens(sample, slot, valid, rows - sample * N)


def capacity_gather(mask: torch.Tensor, score: torch.Tensor, num_prefix: int,
                    capacity: SiteCapacity, token_mixing: bool) -> Gathered:
    """The top ``capacity.k`` tokens of each sample: prefix, then kept tokens by score.

    Static shapes (``B * K`` rows), no branch on data. The K tokens keep their
    original order (attention and rotary positions see what ``sparse`` sees);
    tokens gathered only to fill K get weight 0, kept tokens beyond K are
    dropped (and counted).
    """
    B, N = mask.shape
    k = min(capacity.k, N)  # a shorter sequence (smaller input) than calibrated: all of it
    rank = torch.where(mask > 0, score, float('-inf'))
    rank[:, :num_prefix] = float('inf')
    tokens = rank.topk(k, dim=1, sorted=False).indices.sort(dim=1).values  # (B, K)
    weight = mask.gather(1, tokens)
    capacity.count_dropped(mask.sum(dim=1), k)
    sample = torch.arange(B, device=mask.device)[:, None].expand(B, k)
    rows = (sample * N + tokens).reshape(-1)
    kept = None
    if token_mixing:
        slot = torch.arange(k, device=mask.device).expand(B, k)
        kept = KeptTokens(sample.reshape(-1), slot.reshape(-1), weight, tokens.reshape(-1))
    return Gathered(rows, kept, weight.reshape(-1))


# The flat token indices of the rows each running branch was given, and the (B, N) of the
# tokens they index, innermost last. Per-sample routing inside a branch (a multi-task model's
# LoRA, see multitask.py) reads which sample each row came from here: rows have no batch axis.
_BRANCH_ROWS: List[Tuple[torch.Tensor, Tuple[int, int]]] = []


def branch_rows() -> Optional[Tuple[torch.Tensor, Tuple[int, int]]]:
    """``(rows, (B, N))``: the flat indices into the ``(B, N)`` tokens of the rows the
    innermost running sparse branch was given (row ``i`` is token ``rows[i] % N`` of sample
    ``rows[i] // N``); None when no branch runs on gathered rows."""
    return _BRANCH_ROWS[-1] if _BRANCH_ROWS else None


def add_branch_of_rows(fn: Callable, x: torch.Tensor, gathered: Gathered,
                       out: torch.Tensor) -> torch.Tensor:
    """Add ``fn`` of the ``gathered`` rows of ``x`` into ``out``, at those rows.

    Token-mixing branches are called ``fn(rows, kept=layout)``: token-wise
    layers run on the rows, attention on the per-sample layout. While ``fn``
    runs, :func:`branch_rows` tells which tokens the rows are.
    """
    rows = x.reshape(-1, x.shape[-1]).index_select(0, gathered.rows)
    _BRANCH_ROWS.append((gathered.rows, tuple(x.shape[:2])))
    try:
        update = fn(rows) if gathered.kept is None else fn(rows, kept=gathered.kept)
    finally:
        _BRANCH_ROWS.pop()
    if gathered.weight is not None:
        update = update * gathered.weight[:, None].to(update.dtype)
    return add_rows(out, gathered.rows, update)


def sparse_branch(fn: Callable, x: torch.Tensor, mask: torch.Tensor, out: torch.Tensor,
                  token_mixing: bool) -> torch.Tensor:
    """Add ``fn`` of the kept tokens of the whole batch into ``out``: one gather and
    one scatter for the batch."""
    rows = kept_rows(mask)
    if keeps_every_token(rows, mask):
        return out.add_(fn(x))
    kept = sparse_layout(mask, rows) if token_mixing else None
    return add_branch_of_rows(fn, x, Gathered(rows, kept, None), out)


def run_site(mode: str, branch: Callable, x: torch.Tensor, num_prefix: int,
             dispatcher: Optional[nn.Module], adapter: Optional[nn.Module],
             drop_path: Callable = nn.Identity(), token_mixing: bool = False,
             capacity: Optional[SiteCapacity] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x + mask * drop_path(branch(x)) + adapter(x)`` in ``mode``.

    ``branch(x)``: the residual branch on ``(B, N, C)`` tokens; token-mixing
    branches (attention, a whole layer) are called ``branch(x, key_mask)`` in
    the masked mode and ``branch(rows, kept=layout)`` with the gathered rows'
    layout in the sparse and capacity modes. ``dispatcher(x, num_prefix)``
    gives the ``(B, N)`` mask (prefix tokens always kept); without one nothing
    is skipped. ``capacity``:
    the site's K (capacity mode needs it). Returns the new tokens and the mask of
    the ``N - num_prefix`` image tokens.
    """
    residual = x if adapter is None else x + adapter(x)
    if mode == 'complete' or dispatcher is None:
        mask = x.new_ones(x.shape[:2])
        return residual + drop_path(branch(x)), mask[:, num_prefix:]
    if mode == 'capacity':
        mask, score = dispatcher.ranked(x, num_prefix)
    else:
        mask = dispatcher(x, num_prefix)
    if mode == 'masked':
        update = branch(x, mask.detach()) if token_mixing else branch(x)
        out = residual + drop_path(update * mask.unsqueeze(-1))
    else:
        # the sparse paths add into their output in place: never into the block's input
        out = residual if adapter is not None else x.clone()
        if mode == 'sparse':
            out = sparse_branch(branch, x, mask, out, token_mixing)
        else:
            gathered = capacity_gather(mask, score, num_prefix, capacity, token_mixing)
            out = add_branch_of_rows(branch, x, gathered, out)
    return out, mask[:, num_prefix:]
