"""One trained model, any compute budget: calibrating the dispatchers' test-time threshold.

At test a dispatcher keeps the tokens with ``sigmoid(logit - offset) > threshold``
(no noise). Training only pulls the *mean of sigmoid(logit)* to r, so with the
paper's rule (offset 0) the test keep rate of a trained model drifts from r,
and it is fixed at whatever training left. :func:`calibrate_budget` sets the
offsets (a buffer of each dispatcher, saved in checkpoints; logit units) so
that the noiseless keep rate on calibration data equals a target keep rate,
or so that the backbone spends a target number of GFLOPs per ViT image. It
changes no trained weight and nothing about training.

Rates are taken on the masks' grid, as ``DyTHook`` and the rate loss take
them: a Swin site's token counts for the finest tokens it covers, so each
Swin stage weighs alike however few tokens it has.

The offsets come from exact quantiles of the gate logits seen on the data. A
site's logits depend on what earlier sites kept, so the quantiles are taken
again on a new pass until the measured figure is within ``tol`` of the
target: per layer this takes at most one pass per site (site ``s`` is exact
once sites ``< s`` are), globally it usually takes two or three.
:func:`calibrate_keep_rate` is the one-batch form for benchmarks: each site
set as the forward reaches it, exact in one pass.
"""
import math
import numbers
import warnings
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .dispatcher import TokenDispatcher, threshold_logit
from .network import DyTNetwork, dyt_network
from .recorder import DispatchRecorder, NetworkCall
from .site import dyt_mode

OFFSET_NAME = 'threshold_offset'
TARGET_KINDS = ('keep_rate', 'gflops')
Target = Union[float, Dict[str, float]]


def is_threshold_offset(name: str) -> bool:
    """Whether a state-dict key is a dispatcher's calibrated threshold offset."""
    return name.rsplit('.', 1)[-1] == OFFSET_NAME


def dispatch_sites(model: nn.Module) -> Tuple[DyTNetwork, List[TokenDispatcher]]:
    """The one DyT network of ``model`` (or ``model`` itself) and its dispatchers, in site
    order."""
    vit = dyt_network(model)
    dispatchers = [vit.blocks[i].dispatchers[site] for i, site in vit.sites
                   if site in vit.blocks[i].dispatchers]
    if not dispatchers:
        raise ValueError('this model has no dispatchers (dispatch=None): there is no keep rate '
                         'to calibrate')
    # the offset shifts a learned gate's per-token decision; a random dispatcher has no
    # gate and a sample-level one decides for whole samples
    other = sorted({type(d).__name__ for d in dispatchers
                    if not (isinstance(d, TokenDispatcher) and d.level == 'token')})
    if other:
        raise ValueError(f'calibration needs learned token-level dispatchers (TokenDispatcher); '
                         f'this model has {", ".join(other)}')
    return vit, dispatchers


def threshold_offsets(model: nn.Module) -> torch.Tensor:
    """``(S,)`` threshold offsets of the dispatch sites (all 0 unless calibrated)."""
    _, dispatchers = dispatch_sites(model)
    return torch.stack([d.threshold_offset.detach().cpu() for d in dispatchers])


@torch.no_grad()
def set_threshold_offsets(model: nn.Module, offsets: Union[float, Sequence[float],
                                                           torch.Tensor]) -> None:
    """Set every site's offset: one value for all, or one per site (0 resets)."""
    _, dispatchers = dispatch_sites(model)
    offsets = torch.as_tensor(offsets, dtype=torch.float32).expand(len(dispatchers))
    for dispatcher, offset in zip(dispatchers, offsets):
        dispatcher.threshold_offset.fill_(offset)


def offset_keeping(logits: torch.Tensor, fraction: float, threshold: float,
                   weights: Optional[torch.Tensor] = None) -> float:
    """The offset with which a dispatcher keeps ``fraction`` of the tokens of ``logits``.

    ``weights`` (as ``logits``; default 1 each): what each token counts for,
    so that ``fraction`` is one of the total weight (the nearest reachable).
    Half-way between the last kept and the first dropped logit, so that
    rounding does not move the cut; -inf keeps everything.
    """
    values, order = logits.flatten().float().sort(descending=True)
    if weights is None:
        count = int(round(fraction * values.numel()))
    else:
        # the weight kept by the first 0, 1, ..., all tokens
        kept = F.pad(weights.flatten()[order].double().cumsum(0), (1, 0))
        count = int((kept - fraction * kept[-1]).abs().argmin())
    if count >= values.numel():
        return -math.inf
    cut = values[0].item() + 1.0 if count == 0 else (values[count - 1] + values[count]).item() / 2
    return cut - threshold_logit(threshold)


class _Chunk(NamedTuple):
    # (B, S, T) gate logits of one ViT call, T the masks' last dimension; -inf after a site's
    # tokens when it has fewer than T (token merging, a coarse Swin stage): such a token is
    # never kept, and no quantile counts it
    logits: torch.Tensor
    kept: torch.Tensor  # (B, S) kept image tokens per site in that call, on the masks' grid
    areas: torch.Tensor  # (S,) tokens of the masks' grid per gate logit (Swin: 4^stage, else 1)

    def counted(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` site tokens (gate logits) -> tokens of the masks' grid."""
        return tokens * self.areas

    @property
    def seen(self) -> torch.Tensor:
        """``(B, S)`` image tokens each site saw, on the masks' grid."""
        return self.counted(self.logits.isfinite().sum(dim=-1))


def _chunk(call: NetworkCall) -> _Chunk:
    """A recorded call's gate logits, padded to the masks' grid, and its kept counts."""
    num_image_tokens = call.num_image_tokens
    logits = [F.pad(site, (0, num_image_tokens - site.shape[-1]), value=-math.inf)
              for site in call.gate_logits]
    lengths = torch.tensor([site.shape[-1] for site in call.gate_logits])
    return _Chunk(torch.stack(logits, dim=1), call.kept, call.site_tokens // lengths)


class _Budget:
    """The calibration target and how to measure it on recorded chunks."""

    def __init__(self, target: Target, vit: DyTNetwork):
        if isinstance(target, dict):
            if len(target) != 1 or next(iter(target)) not in TARGET_KINDS:
                raise ValueError(f'target must be a keep rate, dict(keep_rate=R) or '
                                 f'dict(gflops=G), got {target!r}')
            self.kind, value = next(iter(target.items()))
        else:
            self.kind, value = 'keep_rate', target
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(f'target {self.kind} must be a number, got {value!r}')
        if self.kind == 'keep_rate' and not 0.0 < value <= 1.0:
            raise ValueError(f'target keep rate must lie in (0, 1], got {value!r}')
        if self.kind == 'gflops' and not 0.0 < value < math.inf:
            raise ValueError(f'target GFLOPs per image must be a positive number, got {value!r}')
        self.value = float(value)
        self.vit = vit

    def keep_rate(self, chunks: List[_Chunk]) -> float:
        kept = sum(c.kept.double().sum().item() for c in chunks)
        return kept / sum(c.seen.sum().item() for c in chunks)

    def site_rates(self, chunks: List[_Chunk]) -> torch.Tensor:
        kept = sum(c.kept.double().sum(dim=0) for c in chunks)
        return kept / sum(c.seen.sum(dim=0) for c in chunks)

    def gflops(self, chunks: List[_Chunk], kept: Optional[List[torch.Tensor]] = None) -> float:
        """Mean backbone GFLOPs per ViT image at the chunks' (or the given) kept counts."""
        kept = kept if kept is not None else [c.kept for c in chunks]
        total = sum(self.vit.flops_counter(c.logits.shape[2]).per_sample(k).sum().item()
                    for c, k in zip(chunks, kept))
        return total / sum(len(k) for k in kept) / 1e9

    def measure(self, chunks: List[_Chunk]) -> float:
        return self.keep_rate(chunks) if self.kind == 'keep_rate' else self.gflops(chunks)

    def check_reachable(self, chunks: List[_Chunk]) -> float:
        """The range of the measured figure (1 for keep rates); a GFLOPs target outside the
        model's range on these inputs is an error."""
        if self.kind == 'keep_rate':
            return 1.0
        floor = self.gflops(chunks, [torch.zeros_like(c.kept) for c in chunks])
        ceiling = self.gflops(chunks, [c.seen for c in chunks])
        if not floor < self.value <= ceiling:
            raise ValueError(
                f'target of {self.value:g} backbone GFLOPs per image is out of reach on these '
                f'inputs ({chunks[0].logits.shape[2]} image tokens): allowed ({floor:.6g}, '
                f'{ceiling:.6g}], from every image token skipping every dispatched block to '
                f'none skipping it')
        return ceiling - floor


def _offsets_keeping(chunks: List[_Chunk], dispatchers: List[TokenDispatcher], fraction: float,
                     per_layer: bool) -> torch.Tensor:
    """Per-site offsets that keep ``fraction`` of the recorded logits (pooled or per site).

    Pooled, a logit weighs the tokens of the masks' grid it stands for."""
    logits = [torch.cat([c.logits[:, s].flatten() for c in chunks])
              for s in range(len(dispatchers))]
    logits = [site[site.isfinite()] for site in logits]  # the tokens each site saw
    if per_layer:
        return torch.tensor([offset_keeping(site, fraction, d.threshold)
                             for site, d in zip(logits, dispatchers)])
    thresholds = {d.threshold for d in dispatchers}
    if len(thresholds) > 1:
        raise ValueError(f'a global offset needs one threshold for all dispatchers, found '
                         f'{sorted(thresholds)}; calibrate with per_layer=True')
    weights = torch.cat([torch.full_like(site, area)
                         for site, area in zip(logits, chunks[0].areas.tolist())])
    return torch.full((len(dispatchers), ),
                      offset_keeping(torch.cat(logits), fraction, thresholds.pop(), weights))


def _predicted_kept(chunks: List[_Chunk], dispatchers: List[TokenDispatcher],
                    offsets: torch.Tensor) -> List[torch.Tensor]:
    # the dispatchers' own eval rule, in logit space
    cuts = offsets + torch.tensor([threshold_logit(d.threshold) for d in dispatchers])
    return [c.counted((c.logits > cuts[:, None]).sum(dim=-1)) for c in chunks]


def _fraction_for(budget: _Budget, chunks: List[_Chunk], dispatchers: List[TokenDispatcher],
                  per_layer: bool, steps: int = 40) -> float:
    """The keep fraction whose quantile offsets meet the budget on the recorded logits."""
    if budget.kind == 'keep_rate':
        return budget.value
    low, high = 0.0, 1.0  # FLOPs grow with the fraction
    for _ in range(steps):
        middle = (low + high) / 2
        offsets = _offsets_keeping(chunks, dispatchers, middle, per_layer)
        kept = _predicted_kept(chunks, dispatchers, offsets)
        if budget.gflops(chunks, kept) < budget.value:
            low = middle
        else:
            high = middle
    return high


@contextmanager
def evaluating(model: nn.Module):
    """``model`` in eval mode, then every submodule back in its own mode (a wrapper in
    train mode around an eval model must not switch the model to training)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def default_forward(model: nn.Module) -> Callable:
    # mmengine models take a data loader batch in test_step; anything else is called
    return model.test_step if hasattr(model, 'test_step') else model


@torch.no_grad()
def run_recording(recorder: DispatchRecorder, forward: Callable,
                  data: Iterable) -> List[NetworkCall]:
    """``forward`` each batch of ``data`` while ``recorder`` records; the recorded calls
    in which the dispatchers ran. Calibrations share this loop."""
    with recorder:
        for batch in data:
            forward(batch)
    # nothing is dispatched in complete mode
    calls = [call for call in recorder.pop() if call.mode != 'complete']
    if not calls:
        raise ValueError('no dispatcher ran on the calibration data: it is empty, or the model '
                         "runs in a mode that runs none ('complete'; 'capacity' ranks instead)")
    return calls


def _run(vit: DyTNetwork, forward: Callable, data: Iterable) -> List[_Chunk]:
    return [_chunk(call) for call in
            run_recording(DispatchRecorder(vit, gate_logits=True), forward, data)]


def calibrate_budget(model: nn.Module, data: Iterable, target: Target, per_layer: bool = False,
                     forward: Optional[Callable] = None, tol: float = 0.002,
                     max_passes: Optional[int] = None) -> Dict:
    """Set the dispatchers' test-time threshold offsets so that ``model`` meets ``target``.

    Args:
        model: a model holding one DyT network (:class:`DyTViT`,
            :class:`DyTSwin`; the network, a backbone, or a toolbox model).
        data: an iterable of batches, read once per pass (a list or a data
            loader; it is iterated several times).
        target: a keep rate in (0, 1] (the mean over dispatch sites and image
            tokens, as ``DyTHook`` logs ``keep_rate``), written ``0.5`` or
            ``dict(keep_rate=0.5)``; or ``dict(gflops=G)``: backbone GFLOPs
            per ViT image (a frame, for video), as ``DyTHook`` logs ``gflops``.
            1 keeps every token (offset -inf).
        per_layer: one offset per site, so that every site keeps the same
            share of its tokens; default one offset shared by all sites, so
            that layers keep what the trained gates prefer, in total the target.
        forward: called on each batch; default ``model.test_step`` for
            mmengine models (the batch is a data loader's), else ``model``.
        tol: stop when the measured keep rate is this close to the target (for
            GFLOPs: this fraction of the model's GFLOPs range).
        max_passes: passes after the first, measuring one; default sites + 1,
            enough for per-layer calibration to be exact.

    Returns the figures before and after (``keep_rate``, ``gflops``, per-site
    keep rates, offsets), the number of ViT images and passes, and whether
    the result is within ``tol`` (a warning says so when it is not).
    """
    vit, dispatchers = dispatch_sites(model)
    budget = _Budget(target, vit)
    forward = forward or default_forward(model)
    max_passes = len(dispatchers) + 1 if max_passes is None else max_passes
    if max_passes < 1 or not tol > 0:
        raise ValueError(f'need max_passes >= 1 and tol > 0, got {max_passes} and {tol}')
    with evaluating(model):
        chunks = _run(vit, forward, data)
        before = dict(keep_rate=budget.keep_rate(chunks), gflops=budget.gflops(chunks),
                      offsets=threshold_offsets(model).tolist())
        tolerance = tol * budget.check_reachable(chunks)
        for passes in range(1, max_passes + 1):
            fraction = _fraction_for(budget, chunks, dispatchers, per_layer)
            set_threshold_offsets(model, _offsets_keeping(chunks, dispatchers, fraction,
                                                          per_layer))
            chunks = _run(vit, forward, data)
            errors = [budget.measure(chunks) - budget.value]
            if per_layer and budget.kind == 'keep_rate':
                errors += (budget.site_rates(chunks) - budget.value).tolist()
            if max(abs(e) for e in errors) <= tolerance:
                break
    converged = max(abs(e) for e in errors) <= tolerance
    if not converged:
        warnings.warn(f'calibration to {budget.kind} {budget.value:g} stopped after {passes} '
                      f'passes at {budget.measure(chunks):.4f} (tolerance {tolerance:.4g})')
    return dict(
        target=budget.value, kind=budget.kind, per_layer=per_layer, passes=passes,
        converged=converged, num_images=sum(len(c.kept) for c in chunks),
        keep_rate_before=before['keep_rate'], gflops_before=before['gflops'],
        offsets_before=before['offsets'], keep_rate=budget.keep_rate(chunks),
        gflops=budget.gflops(chunks), keep_rate_per_site=budget.site_rates(chunks).tolist(),
        offsets=threshold_offsets(model).tolist())


@torch.no_grad()
def calibrate_keep_rate(model: nn.Module, inputs: torch.Tensor, rate: float) -> float:
    """Set each site's threshold offset so that it keeps ``rate`` of the image tokens of
    ``inputs`` that reach it, in one forward pass of ``model(inputs)``.

    A benchmark aid for one batch (a model whose dispatchers are untrained,
    say): each site is calibrated when the forward reaches it, on the tokens
    that reach it, so one pass is exact at every site, where
    :func:`calibrate_budget` (``per_layer=True``: any data, several batches, or
    a GFLOPs target) takes up to one pass per site. ``model``: a module holding
    one DyT network and called on ``inputs`` (a backbone, or the network
    itself); it runs in eval and ``masked`` mode. Returns the keep rate the
    calibrated model then has on ``inputs`` (the mean over sites and images of
    each site's kept share of the tokens it saw).
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f'calibration keep rate must lie in (0, 1], got {rate!r}')
    vit = dyt_network(model)

    def set_offset(dispatcher: TokenDispatcher, args) -> None:
        tokens, num_prefix = args
        logits = dispatcher.image_logits(tokens, num_prefix)
        dispatcher.threshold_offset.fill_(offset_keeping(logits, rate, dispatcher.threshold))

    # every gated dispatcher; a random one has no threshold to move
    handles = [d.register_forward_pre_hook(set_offset) for d in vit.modules()
               if isinstance(d, TokenDispatcher)]
    try:
        with evaluating(model), dyt_mode(vit, 'masked'), DispatchRecorder(vit) as recorder:
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return recorder.calls[0].keep_rates.mean().item()
