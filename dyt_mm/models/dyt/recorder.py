"""One recorder of what a DyT network's dispatchers do, call by call.

Training logs (the engine's metrics hook), threshold calibration, capacity
calibration and the analysis tools all watch a network the same way: forward
hooks copy, for every call of the network, its masks to the CPU, and, when
asked, the gates' logits, each dispatcher's kept count and the input of an
outer module (the backbone that called the network). What each user then
computes from the calls is its own business.
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .network import DyTNetwork


class NetworkCall(NamedTuple):
    """One forward of a DyT network, as :class:`DispatchRecorder` saw it (tensors detached,
    on the CPU)."""
    mode: str  # the network's execution mode during the call ('mixed' if its blocks differ)
    kept: torch.Tensor  # (B, S) kept image tokens per site, on the masks' grid
    site_tokens: torch.Tensor  # (S,) image tokens each site saw, on the masks' grid
    num_image_tokens: int  # the masks' last dimension
    grid: Optional[Tuple[int, int]]  # the network's image-token grid for this input
    masks: Optional[torch.Tensor] = None  # (B, S, N_image), with ``masks=True``
    sources: Optional[torch.Tensor] = None  # token merging's DyTOutput.sources, with masks
    # with ``gate_logits=True``: per site, in site order, the (B, n) logits of its gate (n: the
    # image tokens it saw); None when no gate ran in the call (the complete mode)
    gate_logits: Optional[Tuple[torch.Tensor, ...]] = None
    # with ``site_kept=True``: per site, in site order, the (B,) tokens its dispatcher kept
    # out of the site's whole sequence, prefix included; None when no dispatcher ran
    site_kept: Optional[Tuple[torch.Tensor, ...]] = None
    inputs: Optional[torch.Tensor] = None  # the outer module's input, with ``keep_inputs``
    batch_size: Optional[int] = None  # inputs of the outer module in the call, given one

    @property
    def keep_rates(self) -> torch.Tensor:
        """``(B, S)`` kept share of the image tokens each site saw."""
        return self.kept.double() / self.site_tokens


class DispatchRecorder:
    """Records every call of ``network`` while active (``with recorder:`` or
    :meth:`start` / :meth:`stop`): :attr:`calls`, a list of :class:`NetworkCall`.

    Args:
        network: the DyT network to watch.
        masks: keep each call's full masks (and token merging's sources); without
            it only the kept counts are kept, which is what long runs can afford.
        gate_logits: record the gates' logits (every dispatcher needs a ``gate``).
        site_kept: record each dispatcher's per-sample kept count.
        inputs_of: a module that calls ``network`` (a backbone): each call records
            how many inputs that module's latest call had (``batch_size``).
        keep_inputs: also keep a copy of that input (``inputs``).
    """

    def __init__(self, network: DyTNetwork, masks: bool = False, gate_logits: bool = False,
                 site_kept: bool = False, inputs_of: Optional[nn.Module] = None,
                 keep_inputs: bool = False):
        if keep_inputs and inputs_of is None:
            raise ValueError('keep_inputs needs inputs_of: the module whose input to keep')
        self.network = network
        self.keep_masks = masks
        self.inputs_of = inputs_of
        self.keep_inputs = keep_inputs
        # the dispatchers in site order (sites without one have no entry)
        self.dispatchers = [network.blocks[i].dispatchers[site] for i, site in network.sites
                            if site in network.blocks[i].dispatchers]
        if gate_logits:
            ungated = sorted({type(d).__name__ for d in self.dispatchers
                              if not isinstance(getattr(d, 'gate', None), nn.Module)})
            if ungated:
                raise ValueError(f'recording gate logits needs gated dispatchers; '
                                 f'{", ".join(ungated)} has no gate')
        self.record_gates = gate_logits
        self.record_site_kept = site_kept
        self.calls: List[NetworkCall] = []
        self._gates: List[Optional[torch.Tensor]] = []
        self._site_kept: List[Optional[torch.Tensor]] = []
        self._outer: Tuple[Optional[torch.Tensor], Optional[int]] = (None, None)
        self._handles = []

    # ------------------------------------------------------------- hooks
    def _clear_sites(self) -> None:
        self._gates = [None] * len(self.dispatchers)
        self._site_kept = [None] * len(self.dispatchers)

    def _gate_hook(self, site: int):
        def record(module, args, logits) -> None:
            self._gates[site] = logits.detach().squeeze(-1).float().cpu()
        return record

    def _dispatcher_hook(self, site: int):
        def record(module, args, mask) -> None:
            self._site_kept[site] = mask.detach().sum(dim=1).cpu()
        return record

    def _on_outer(self, module, args) -> None:
        x = args[0]
        self._outer = (x.detach().clone() if self.keep_inputs else None, x.shape[0])

    def _on_network(self, module, args, output) -> None:
        masks = output.masks.detach()
        kept = masks.sum(dim=-1).cpu()  # summed where the masks are: less to copy
        masks = masks.cpu() if self.keep_masks else None
        gates = tuple(self._gates) if any(g is not None for g in self._gates) else None
        site_kept = (tuple(self._site_kept) if any(k is not None for k in self._site_kept)
                     else None)
        sources = None
        if self.keep_masks and output.sources is not None:
            sources = output.sources.cpu()
        num_image_tokens = output.masks.shape[-1]
        self.calls.append(NetworkCall(
            module.mode, kept, module.site_tokens(num_image_tokens), num_image_tokens,
            output.grid, masks, sources, gates, site_kept, *self._outer))
        self._clear_sites()

    # ----------------------------------------------------------- control
    def start(self) -> 'DispatchRecorder':
        if self._handles:
            raise RuntimeError('this DispatchRecorder is already recording')
        self._clear_sites()
        self._handles = [self.network.register_forward_hook(self._on_network)]
        if self.inputs_of is not None:
            self._handles.append(self.inputs_of.register_forward_pre_hook(self._on_outer))
        for site, dispatcher in enumerate(self.dispatchers):
            if self.record_gates:
                self._handles.append(dispatcher.gate.register_forward_hook(
                    self._gate_hook(site)))
            if self.record_site_kept:
                self._handles.append(dispatcher.register_forward_hook(
                    self._dispatcher_hook(site)))
        return self

    def stop(self) -> None:
        """Remove the hooks (the recorded calls stay); stopping twice is harmless."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def pop(self) -> List[NetworkCall]:
        """The calls recorded since the last pop (or the start), forgotten here."""
        calls, self.calls = self.calls, []
        return calls

    def __enter__(self) -> 'DispatchRecorder':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
