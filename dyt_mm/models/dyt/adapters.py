"""Adapters: the trainable parts a DyT block adds to the frozen pre-trained ViT.

All are registered in mmengine's root ``MODELS`` and built from
``adapter=dict(type=...)`` with the block's ``embed_dims``. A class says where
it attaches with its ``attach`` attribute:

* ``'parallel'`` (also any class without the attribute, e.g. a user's own
  adapter): a token-wise branch ``(B, N, C) -> (B, N, C)`` beside each
  dispatched site, ``x' = x + mask * f(x) + adapter(x)``; every token goes
  through it (``Adapter``, ``MoEAdapter``);
* ``'qkv'``: added to the attention's qkv projection, ``qkv(x) + lora(x)``;
  ``merge(linear)`` folds it into the frozen weights (``LoRA``);
* ``'prompts'``: prefix tokens inserted for the block and dropped after it,
  never dispatched (``VPTPrompts``: VPT-deep).

``flops(num_tokens)`` is an adapter's inference cost (one multiply-add = one
FLOP); the FLOP counter traces a class that does not define it.
"""
import math
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import nn

from .registry import build_part, check_choice

ATTACH_POINTS = ('parallel', 'qkv', 'prompts')
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


@MODELS.register_module()
class LoRA(nn.Module):
    """Low-rank update of the attention's fused qkv projection: ``qkv(x) + lora(x)``,
    ``lora(x) = alpha / rank * up(dropout(down(x)))``.

    ``up`` starts at zero (a fresh LoRA leaves the model unchanged), ``down``
    as ``nn.Linear`` does. Trainable parameters: ``4 * C * rank`` per layer
    (C x r down, r x 3C up, no biases), so rank 8 gives 0.29 M and rank 32
    1.18 M for ViT-B (the paper's 0.29 M / 1.19 M). ``merge(qkv)`` adds the
    update to the frozen weight: the merged model is an ordinary ViT, so the
    FLOP counter gives LoRA no cost. ``alpha`` defaults to ``rank`` (scale 1);
    the paper does not give it.
    """
    attach = 'qkv'

    def __init__(self, embed_dims: int, rank: int = 8, alpha: Optional[float] = None,
                 dropout: float = 0.0):
        super().__init__()
        _positive_int('LoRA rank', rank)
        self.down = nn.Linear(embed_dims, rank, bias=False)
        self.up = nn.Linear(rank, 3 * embed_dims, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = (rank if alpha is None else alpha) / rank
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def flops(self, num_tokens: int) -> int:
        return 0  # merged into the qkv weights for inference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.down(x))) * self.scale

    @torch.no_grad()
    def merge(self, qkv: nn.Linear) -> None:
        """Add ``scale * up @ down`` to ``qkv.weight`` in place."""
        if qkv.weight.shape != (self.up.out_features, self.down.in_features):
            raise ValueError(f'LoRA of shape {self.down.in_features} -> '
                             f'{self.up.out_features} does not fit a layer of weight shape '
                             f'{tuple(qkv.weight.shape)}')
        qkv.weight += self.scale * (self.up.weight @ self.down.weight).to(qkv.weight.dtype)


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


def build_adapters(cfg: Optional[Mapping], embed_dims: int,
                   sites: Sequence[str]) -> Dict[str, nn.Module]:
    """One block's adapters by where they attach: one per dispatched site for a
    parallel adapter, else one under its attach point (``qkv``, ``prompts``)."""
    if cfg is None:
        return {}
    first = build_adapter(cfg, embed_dims)
    attach = attach_point(first)
    check_choice('adapter attach point', attach, ATTACH_POINTS)
    if attach != 'parallel':
        return {attach: first}
    return {site: first if i == 0 else build_adapter(cfg, embed_dims)
            for i, site in enumerate(sites)}
