"""The one dispatched site: dispatcher + adapter + branch, in three execution modes.

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
  gathered, ``f`` runs on them, and the result is scattered back.
"""
from typing import Callable, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .registry import check_choice

MODES = ('masked', 'complete', 'sparse')


class DispatchedBlock(nn.Module):
    """Base of every block with dispatched sites: holds the execution mode.

    :func:`~dyt_mm.models.dyt.set_mode`, calibration and export find blocks
    by this class, whatever architecture they belong to. Subclasses hold
    ``dispatchers`` and ``adapters`` (``nn.ModuleDict`` keyed by site) and run
    each site with :meth:`run_site`.
    """

    def __init__(self):
        super().__init__()
        self.mode = 'masked'

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
        return run_site(self.mode, branch, x, num_prefix, dispatcher, adapter, drop_path,
                        token_mixing)


class KeptTokens(NamedTuple):
    """Where the kept tokens of a batch sit when packed per sample.

    The tokens themselves travel as flat rows ``(K, C)`` (every kept token of
    the batch, in order), so that every token-wise layer runs on exactly the
    kept tokens. Only attention needs them per sample: row ``i`` goes to slot
    ``slot[i]`` of sample ``sample[i]`` in a ``(B, K_max)`` layout whose
    ``valid`` key mask hides the padding.
    """
    sample: torch.Tensor
    slot: torch.Tensor
    valid: torch.Tensor
    token: torch.Tensor  # each row's index in its sample's sequence (for rotary positions)




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


def sparse_tokenwise(fn: Callable, x: torch.Tensor, mask: torch.Tensor,
                     out: torch.Tensor) -> torch.Tensor:
    """Add ``fn`` of the kept tokens of the whole batch into ``out``.

    One gather and one scatter for the batch.
    """
    rows = kept_rows(mask)
    if keeps_every_token(rows, mask):
        return out.add_(fn(x))
    return add_rows(out, rows, fn(x.reshape(-1, x.shape[-1]).index_select(0, rows)))


def sparse_token_mixing(fn: Callable, x: torch.Tensor, mask: torch.Tensor,
                        out: torch.Tensor) -> torch.Tensor:
    """Like :func:`sparse_tokenwise` for branches where tokens interact.

    ``fn(rows, kept=...)`` gets the kept tokens of the whole batch as flat rows
    and their per-sample layout (:class:`KeptTokens`): token-wise layers run
    on exactly the kept tokens, attention on each sample's kept tokens (in
    their original order) padded to the largest count.
    """
    B, N, C = x.shape
    rows = kept_rows(mask)
    if keeps_every_token(rows, mask):
        return out.add_(fn(x))
    counts = mask.sum(dim=1).long()
    sample = torch.div(rows, N, rounding_mode='floor')
    slot = torch.arange(rows.shape[0], device=x.device) - (counts.cumsum(0) - counts)[sample]
    # The largest count as a size that tracing carries like the row count (a
    # nonzero: the slots some sample fills), not a Python int from .item().
    slots = (torch.arange(N, device=x.device) < counts.max()).nonzero().squeeze(1)
    valid = (slots < counts[:, None]).to(x.dtype)
    kept = KeptTokens(sample, slot, valid, rows - sample * N)
    return add_rows(out, rows, fn(x.reshape(-1, C).index_select(0, rows), kept=kept))


def run_site(mode: str, branch: Callable, x: torch.Tensor, num_prefix: int,
             dispatcher: Optional[nn.Module], adapter: Optional[nn.Module],
             drop_path: Callable = nn.Identity(), token_mixing: bool = False
             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x + mask * drop_path(branch(x)) + adapter(x)`` in ``mode``.

    ``branch(x, key_mask=None, kept=None)``: the residual branch on ``(B, N, C)``
    tokens; token-mixing branches (attention, a whole layer) also take the key
    mask of the masked mode and, in sparse mode, the kept rows' layout.
    ``dispatcher(x, num_prefix)`` gives the ``(B, N)`` mask (prefix tokens always
    kept); without one nothing is skipped. Returns the new tokens and the mask
    of the ``N - num_prefix`` image tokens.
    """
    residual = x if adapter is None else x + adapter(x)
    if mode == 'complete' or dispatcher is None:
        mask = x.new_ones(x.shape[:2])
        return residual + drop_path(branch(x)), mask[:, num_prefix:]
    mask = dispatcher(x, num_prefix)
    if mode == 'masked':
        key_mask = mask.detach() if token_mixing else None
        out = residual + drop_path(branch(x, key_mask) * mask.unsqueeze(-1))
    else:
        # the sparse paths add into their output in place: never into the block's input
        out = residual if adapter is not None else x.clone()
        sparse = sparse_token_mixing if token_mixing else sparse_tokenwise
        out = sparse(branch, x, mask, out)
    return out, mask[:, num_prefix:]
