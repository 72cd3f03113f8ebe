"""Bottleneck adapters that run on every token, parallel to a dispatched block."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def _check_adapter_args(bottleneck: int, num_experts: int) -> None:
    if not isinstance(bottleneck, int) or bottleneck < 1:
        raise ValueError(f'adapter bottleneck d must be an integer >= 1, got {bottleneck!r}')
    if not isinstance(num_experts, int) or num_experts < 1:
        raise ValueError(f'num_experts N must be an integer >= 1, got {num_experts!r}')


class Adapter(nn.Module):
    """``scale * up(dropout(relu(down(x))))``.

    The up-projection starts at zero, so a fresh adapter is a zero branch and a
    fresh DyT model computes exactly the pre-trained function.
    """

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(F.relu(self.down(x)))) * self.scale


class MoEAdapter(nn.Module):
    """N expert adapters merged per sample (DyT-dagger).

    A router reads the average of all tokens of a sample and gives one weight
    per expert. The paper does not say how the weights are normalised; we use
    a softmax, so the merged adapter is a convex combination of the experts and
    its scale does not grow with N. The experts' weights are merged first and
    the merged adapter is applied once, so compute equals one adapter.
    """

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


def build_adapter(embed_dims: int, bottleneck: int = 64, num_experts: int = 1,
                  scale: float = 0.1, dropout: float = 0.1) -> nn.Module:
    """A plain adapter for N = 1, the merged MoE-adapter otherwise."""
    _check_adapter_args(bottleneck, num_experts)
    if num_experts == 1:
        return Adapter(embed_dims, bottleneck, scale, dropout)
    return MoEAdapter(embed_dims, bottleneck, num_experts, scale, dropout)
