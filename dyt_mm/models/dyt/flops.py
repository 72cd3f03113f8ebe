"""Analytic FLOPs of the DyT ViT (one multiply-add = one FLOP, fvcore's convention).

Counted like fvcore counts the same modules: linear and conv layers as
in x out per output position (no bias), the two attention matmuls, LayerNorm
as 5 x elements, einsum/bmm/matmul as their multiply-adds; element-wise ops,
softmax, GELU and ReLU are free. Dense ViT-B/16 at 224 x 224 comes to 17.58 G.

Per-sample cost follows the masks: a dispatched branch costs its FLOPs at the
number of kept tokens (prefix tokens included), as the ``sparse`` mode runs it.
"""
from typing import Optional, Tuple

import torch
from torch import nn

from .block import VARIANT_SITES


def layer_norm_flops(tokens, dim):
    return 5 * tokens * dim


def attention_flops(tokens, dim):
    """norm1 + qkv + q @ k^T + attn @ v + proj, for ``tokens`` tokens."""
    return layer_norm_flops(tokens, dim) + 4 * tokens * dim * dim + 2 * tokens * tokens * dim


def mlp_flops(tokens, dim, hidden):
    """norm2 + fc1 + fc2."""
    return layer_norm_flops(tokens, dim) + 2 * tokens * dim * hidden


def adapter_flops(tokens, dim, bottleneck, num_experts):
    flops = 2 * tokens * dim * bottleneck
    if num_experts > 1:
        # router on the pooled tokens + merging the experts' weights and biases
        flops += dim * num_experts + num_experts * (2 * dim * bottleneck + bottleneck + dim)
    return flops


def _adapter_spec(vit) -> Tuple[int, int]:
    adapter = next(iter(vit.blocks[0].adapters.values()))
    if hasattr(adapter, 'down'):
        return adapter.down.out_features, 1
    return adapter.down_weight.shape[-1], adapter.num_experts


class ViTFlops:
    """FLOPs of one :class:`DyTViT` at one input grid.

    ``dense()`` is the plain pre-trained ViT (what the paper lists as full
    tuning: 17.58 G for ViT-B/16); ``complete()`` adds the adapters (the DyT
    model with nothing skipped); ``per_sample(kept)`` counts what ``sparse``
    execution costs for given kept-token counts.
    """

    def __init__(self, vit, grid: Optional[Tuple[int, int]] = None):
        self.dim = vit.embed_dims
        self.hidden = int(vit.embed_dims * vit.mlp_ratio)
        self.depth = vit.depth
        self.sites = VARIANT_SITES[vit.variant]
        self.bottleneck, self.num_experts = _adapter_spec(vit)
        grid = tuple(grid or vit.grid_size)
        self.num_image_tokens = grid[0] * grid[1]
        self.num_tokens = self.num_image_tokens + vit.num_prefix
        self.num_prefix = vit.num_prefix
        patch = vit.patch_size
        self.stem = self.num_image_tokens * self.dim * vit.in_channels * patch * patch
        has_norm = isinstance(vit.norm, nn.LayerNorm)
        self.final_norm = layer_norm_flops(self.num_tokens, self.dim) if has_norm else 0

    def _block(self, attn_tokens, mlp_tokens):
        return attention_flops(attn_tokens, self.dim) + mlp_flops(mlp_tokens, self.dim, self.hidden)

    def _dyt_extra(self):
        """Adapters and dispatchers of one block (they always see every token)."""
        per_site = adapter_flops(self.num_tokens, self.dim, self.bottleneck, self.num_experts)
        per_site += self.num_image_tokens * self.dim
        return len(self.sites) * per_site

    def dense(self) -> float:
        n = self.num_tokens
        return float(self.stem + self.depth * self._block(n, n) + self.final_norm)

    def complete(self) -> float:
        adapters = len(self.sites) * adapter_flops(self.num_tokens, self.dim, self.bottleneck,
                                                   self.num_experts)
        return self.dense() + self.depth * adapters

    def per_sample(self, kept: torch.Tensor) -> torch.Tensor:
        """``kept``: ``(B, S)`` kept image tokens per site (``S = depth x sites``)."""
        n = self.num_tokens
        kept = kept.double().reshape(kept.shape[0], self.depth, len(self.sites)) + self.num_prefix
        by_site = dict(zip(self.sites, kept.unbind(-1)))
        attn_tokens = by_site.get('attn', by_site.get('layer', torch.full_like(kept[..., 0], n)))
        mlp_tokens = by_site.get('mlp', by_site.get('layer', torch.full_like(kept[..., 0], n)))
        blocks = self._block(attn_tokens, mlp_tokens).sum(dim=1)
        return self.stem + self.final_norm + blocks + self.depth * self._dyt_extra()

    def from_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Per-sample FLOPs from the ``(B, S, N_image)`` masks a forward returned."""
        return self.per_sample(masks.sum(dim=-1))
