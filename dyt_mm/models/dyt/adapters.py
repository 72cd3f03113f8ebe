"""Adapters: the trainable parts a DyT block adds to the frozen pre-trained ViT.

All are registered in mmengine's root ``MODELS`` and built from
``adapter=dict(type=...)`` with the block's ``embed_dims``. A class says where
it attaches with its ``attach`` attribute:

* ``'parallel'`` (also any class without the attribute, e.g. a user's own
  adapter): a token-wise branch ``(B, N, C) -> (B, N, C)`` beside each
  dispatched site, ``x' = x + mask * f(x) + adapter(x)``; every token goes
  through it (``Adapter``, ``MoEAdapter``);
* ``'linears'``: low-rank updates of the block's linear layers (q, k, v,
  proj, fc1, fc2), added to their outputs; ``merge`` folds them into the
  frozen weights (``LoRA``);
* ``'prompts'``: prefix tokens inserted for the block and dropped after it,
  never dispatched (``VPTPrompts``: VPT-deep).

Adapters compose: ``adapter=[dict(type='LoRA'), dict(type='Adapter', bottleneck=8)]``
gives a block both, each at its own attach point (DyT + LoRA + MLP adapter:
LoRA on q and v, and a parallel adapter beside the MLP site that every token
goes through, the skipped ones included). Two adapters at one attach point are
an error.

``flops(num_tokens)`` is an adapter's inference cost (one multiply-add = one
FLOP); the FLOP counter traces a class that does not define it. LoRA's cost
depends on where each update runs: the counter takes it per token and layer
(``flops_per_token``), and a merged LoRA costs nothing.
"""
import math
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import nn

from .registry import build_part, check_choice

ATTACH_POINTS = ('parallel', 'linears', 'prompts')
LORA_TARGETS = ('q', 'k', 'v', 'proj', 'fc1', 'fc2')  # HF PEFT's target_modules, timm's names
DEFAULT_ADAPTER = dict(type='Adapter')
OUR_ADAPTERS = ('Adapter', 'MoEAdapter', 'LoRA', 'VPTPrompts')


def _check_adapter_args(bottleneck: int, num_experts: int) -> None:
    if not isinstance(bottleneck, int) or bottleneck < 1:
        raise ValueError(f'adapter bottleneck d must be an integer >= 1, got {bottleneck!r}')
    if not isinstance(num_experts, int) or num_experts < 1:
        raise ValueError(f'num_experts N must be an integer >= 1, got {num_experts!r}')


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be an integer >= 1, got {value!r}')


@MODELS.register_module()
class Adapter(nn.Module):
    """``scale * up(dropout(relu(down(x))))``.

    The up-projection starts at zero, so a fresh adapter is a zero branch and a
    fresh DyT model computes exactly the pre-trained function.
    """
    attach = 'parallel'

    def __init__(self, embed_dims: int, bottleneck: int = 64, scale: float = 0.1,
                 dropout: float = 0.1):
        super().__init__()
        _check_adapter_args(bottleneck, 1)
        self.down = nn.Linear(embed_dims, bottleneck)
        self.up = nn.Linear(bottleneck, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def flops(self, num_tokens: int) -> int:
        return 2 * num_tokens * self.down.in_features * self.down.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(F.relu(self.down(x)))) * self.scale


@MODELS.register_module()
class MoEAdapter(nn.Module):
    """N expert adapters merged per sample (DyT-dagger).

    A router reads the average of all tokens of a sample and gives one weight
    per expert. The paper does not say how the weights are normalised; we use
    a softmax, so the merged adapter is a convex combination of the experts and
    its scale does not grow with N. The experts' weights are merged first and
    the merged adapter is applied once, so compute equals one adapter.
    """
    attach = 'parallel'

    def __init__(self, embed_dims: int, bottleneck: int = 64, num_experts: int = 4,
                 scale: float = 0.1, dropout: float = 0.1):
        super().__init__()
        _check_adapter_args(bottleneck, num_experts)
        self.num_experts = num_experts
        self.router = nn.Linear(embed_dims, num_experts)
        self.down_weight = nn.Parameter(torch.empty(num_experts, embed_dims, bottleneck))
        self.down_bias = nn.Parameter(torch.zeros(num_experts, bottleneck))
        self.up_weight = nn.Parameter(torch.zeros(num_experts, bottleneck, embed_dims))
        self.up_bias = nn.Parameter(torch.zeros(num_experts, embed_dims))
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        # Same init as nn.Linear's weight (kaiming-uniform, a=sqrt(5)), per expert.
        bound = 1.0 / math.sqrt(embed_dims)
        nn.init.uniform_(self.down_weight, -bound, bound)
        nn.init.trunc_normal_(self.router.weight, std=0.02)
        nn.init.zeros_(self.router.bias)

    def flops(self, num_tokens: int) -> int:
        n, dim, d = self.num_experts, *self.down_weight.shape[1:]
        # the merged adapter on every token + router on the pooled tokens + merging the
        # experts' weights and biases
        return 2 * num_tokens * dim * d + dim * n + n * (2 * dim * d + d + dim)

    def expert_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample routing weights ``(B, N)`` from the average-pooled tokens."""
        return self.router(x.mean(dim=1)).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.expert_weights(x)
        down_w = torch.einsum('be,ecd->bcd', alpha, self.down_weight)
        down_b = alpha @ self.down_bias
        up_w = torch.einsum('be,edc->bdc', alpha, self.up_weight)
        up_b = alpha @ self.up_bias
        # bmm + add rather than baddbmm: FLOP counters know bmm.
        hidden = F.relu(torch.bmm(x, down_w) + down_b.unsqueeze(1))
        return (torch.bmm(self.dropout(hidden), up_w) + up_b.unsqueeze(1)) * self.scale


class LowRankUpdate(nn.Module):
    """``scale * up(dropout(down(x)))`` of one linear layer (``in_features -> out_features``).

    ``up`` starts at zero (a fresh update changes nothing), ``down`` as
    ``nn.Linear`` does; no biases (HF PEFT's ``lora_A`` / ``lora_B``).
    """

    def __init__(self, in_features: int, out_features: int, rank: int, scale: float,
                 dropout: float):
        super().__init__()
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def flops_per_token(self) -> int:
        # in x rank + rank x out multiply-adds: one per weight
        return self.down.weight.numel() + self.up.weight.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.down(x))) * self.scale

    def weight_delta(self) -> torch.Tensor:
        """The update as a change of the frozen weight, ``(out_features, in_features)``."""
        return self.scale * self.up.weight @ self.down.weight


@MODELS.register_module()
class LoRA(nn.Module):
    """LoRA (Hu et al.) as HF PEFT and the PETL baselines use it: a separate low-rank update
    ``alpha / rank * B_t A_t x`` added to the output of each target linear layer ``t``.

    ``targets`` (PEFT's ``target_modules``): any of ``q``, ``k``, ``v`` (the
    three parts of the fused qkv projection), ``proj`` (attention's output
    projection), ``fc1``, ``fc2`` (the MLP's); default ``('q', 'v')``, the
    original LoRA's. Trainable parameters per block: ``rank * (in + out)`` per
    target, i.e. ``2 C rank`` for q, k, v, proj and ``5 C rank`` for fc1, fc2
    of a ViT with MLP ratio 4. ViT-B with q and v: ``4 * 768 * rank`` per
    block, 0.29 M at rank 8 and 1.18 M at rank 32 (the paper's 0.29 M /
    1.19 M). ``alpha`` defaults to ``rank`` (scale 1; PEFT's default for rank
    8); the paper does not give it.

    The block tells the LoRA the shapes of its layers (:meth:`fit`) and feeds
    each update the input of its layer (:meth:`adapt`); an update on the MLP
    runs where the MLP runs, so a token the dispatcher skips gets neither the
    MLP nor its update. :meth:`merge` adds each update to its frozen weight:
    the merged model is an ordinary ViT.
    """
    attach = 'linears'

    def __init__(self, embed_dims: int, rank: int = 8, alpha: Optional[float] = None,
                 dropout: float = 0.0, targets: Sequence[str] = ('q', 'v')):
        super().__init__()
        _positive_int('LoRA rank', rank)
        targets = (targets, ) if isinstance(targets, str) else tuple(targets)
        if not targets:
            raise ValueError(f'LoRA needs at least one target; allowed: '
                             f'{", ".join(LORA_TARGETS)}')
        for target in targets:
            check_choice('LoRA target', target, LORA_TARGETS)
        if len(set(targets)) != len(targets):
            raise ValueError(f'LoRA targets repeat a layer: {targets!r}')
        self.rank = rank
        self.targets = targets
        self.scale = (rank if alpha is None else alpha) / rank
        self.dropout = dropout
        self.updates = nn.ModuleDict()  # target -> LowRankUpdate, made by fit()

    def fit(self, shapes: Mapping[str, Tuple[int, int]]) -> None:
        """Make the updates for the block's layers: ``shapes`` maps each layer the block
        has to its ``(in_features, out_features)``."""
        for target in self.targets:
            if target not in shapes:
                hint = " (a gated MLP, mlp_act='swiglu', has no single fc1)" * (target == 'fc1')
                raise ValueError(f'LoRA target {target!r} is not a linear layer of this block; '
                                 f'it has {", ".join(shapes)}{hint}')
            self.updates[target] = LowRankUpdate(*shapes[target], self.rank, self.scale,
                                                 self.dropout)

    def adapts(self, *targets: str) -> bool:
        return any(t in self.updates for t in targets)

    def adapt(self, target: str, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``out``, the output of the ``target`` layer for the input ``x``, plus the
        target's update (``out`` itself when the target is not adapted)."""
        if target not in self.updates:
            return out
        return out + self.updates[target](x)

    def flops_per_token(self, targets: Sequence[str]) -> int:
        """Multiply-adds per token of the updates of ``targets`` (unmerged)."""
        return sum(u.flops_per_token() for t, u in self.updates.items() if t in targets)

    @torch.no_grad()
    def merge(self, layers: Mapping[str, Tuple[nn.Linear, slice]]) -> None:
        """Add each update to its frozen weight, in place: ``layers`` maps a target to its
        layer and the rows of the layer's weight it covers (q, k, v: thirds of qkv)."""
        for target, update in self.updates.items():
            linear, rows = layers[target]
            weight = linear.weight[rows]
            delta = update.weight_delta()
            if weight.shape != delta.shape:
                raise ValueError(f'the LoRA update of {target!r} has shape '
                                 f'{tuple(delta.shape)}, which does not fit the layer\'s '
                                 f'weight rows of shape {tuple(weight.shape)}')
            linear.weight[rows] += delta.to(weight.dtype)


@MODELS.register_module()
class VPTPrompts(nn.Module):
    """VPT-deep: ``num_prompts`` learned tokens inserted after the prefix (class)
    token for one block, and dropped after it; the next block inserts its own.

    They get no position embedding, are never dispatched (they count as prefix
    tokens) and do not change the output shape or the class token's place.
    Initialised uniform(-v, v) with ``v = sqrt(6 / (2 C))``: VPT's value
    ``sqrt(6 / (3 p^2 + C))`` for ViT-B/16, where ``3 p^2 = C``.
    """
    attach = 'prompts'

    def __init__(self, embed_dims: int, num_prompts: int = 8):
        super().__init__()
        _positive_int('num_prompts', num_prompts)
        self.num_prompts = num_prompts
        self.prompts = nn.Parameter(torch.empty(1, num_prompts, embed_dims))
        bound = math.sqrt(6.0 / (2 * embed_dims))
        nn.init.uniform_(self.prompts, -bound, bound)

    def flops(self, num_tokens: int) -> int:
        return 0  # the block's cost at the longer sequence is counted by ViTFlops

    def insert(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        prompts = self.prompts.expand(x.shape[0], -1, -1).to(x.dtype)
        return torch.cat([x[:, :num_prefix], prompts, x[:, num_prefix:]], dim=1)

    def remove(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        return torch.cat([x[:, :num_prefix], x[:, num_prefix + self.num_prompts:]], dim=1)


def attach_point(adapter: nn.Module) -> str:
    return getattr(adapter, 'attach', 'parallel')


def build_adapter(cfg: Mapping, embed_dims: int) -> nn.Module:
    """An adapter from ``dict(type=..., **kwargs)``.

    A dict without ``type`` keeps the meaning it had before adapters were
    registered: ``Adapter``, or ``MoEAdapter`` when it sets ``num_experts`` > 1.
    """
    cfg = dict(cfg) if isinstance(cfg, Mapping) else cfg
    if isinstance(cfg, dict) and 'type' not in cfg:
        num_experts = cfg.pop('num_experts', 1)
        if num_experts != 1:
            cfg.update(type='MoEAdapter', num_experts=num_experts)
    return build_part('adapter', cfg, 'Adapter', embed_dims, OUR_ADAPTERS)


def build_adapters(cfg: Union[None, Mapping, Sequence[Mapping]], embed_dims: int,
                   sites: Sequence[str]) -> Dict[str, nn.Module]:
    """One block's adapters by where they attach: one per dispatched site for a
    parallel adapter, else one under its attach point (``linears``, ``prompts``).

    ``cfg`` is one adapter's config, None, or a list of configs whose adapters
    the block gets together; they must attach at different points."""
    if cfg is None:
        return {}
    if isinstance(cfg, Sequence) and not isinstance(cfg, str):
        adapters: Dict[str, nn.Module] = {}
        for one in cfg:
            built = build_adapters(one, embed_dims, sites)
            clash = sorted(set(built) & set(adapters))
            if clash:
                raise ValueError(f'two adapters of {list(cfg)!r} attach at {clash}; each '
                                 'attach point (a dispatch site, linears, prompts) takes one')
            adapters.update(built)
        return adapters
    first = build_adapter(cfg, embed_dims)
    attach = attach_point(first)
    check_choice('adapter attach point', attach, ATTACH_POINTS)
    if attach != 'parallel':
        return {attach: first}
    return {site: first if i == 0 else build_adapter(cfg, embed_dims)
            for i, site in enumerate(sites)}
