"""Analytic FLOPs of the DyT ViT (one multiply-add = one FLOP, fvcore's convention).

Counted like fvcore counts the same modules: linear and conv layers as
in x out per output position (no bias), the two attention matmuls, LayerNorm
as 5 x elements, einsum/bmm/matmul as their multiply-adds; element-wise ops,
softmax, GELU and ReLU are free. Dense ViT-B/16 at 224 x 224 comes to 17.58 G.
What the pre-trained families add is counted alike: CLIP's norm before the
blocks, EVA-02's SwiGLU (three linear layers) and inner LayerNorms; LayerScale,
QuickGELU and rotary embeddings are element-wise (free).

Per-sample cost follows the masks: a dispatched branch costs its FLOPs at the
number of kept tokens (prefix tokens included), as the ``sparse`` mode runs it.
Adapters and dispatchers report their own cost (``flops``); VPT prompts make
every block's sequence longer.
"""
import math
from typing import Optional, Tuple

import torch
from torch import nn

from .block import VARIANT_SITES, SwiGLU


def layer_norm_flops(tokens, dim):
    return 5 * tokens * dim


def attention_flops(tokens, dim, inner_norm=False, pairs=None):
    """norm1 + qkv + q @ k^T + attn @ v (+ inner norm) + proj, for ``tokens`` tokens.

    ``pairs``: the query-key pairs of the two matmuls, ``tokens**2`` for
    global attention (the default); see :func:`window_pairs`.
    """
    pairs = tokens * tokens if pairs is None else pairs
    norms = (2 if inner_norm else 1) * layer_norm_flops(tokens, dim)
    return norms + 4 * tokens * dim * dim + 2 * pairs * dim


def window_pairs(grid, window_size):
    """Query-key pairs of window attention on ``grid``, padded to whole windows."""
    windows = math.ceil(grid[0] / window_size) * math.ceil(grid[1] / window_size)
    return windows * window_size**4


def mlp_flops(tokens, dim, hidden, gated=False, inner_norm=False):
    """norm2 + fc1 (+ the gate's fc1_g) (+ inner norm) + fc2."""
    inner = layer_norm_flops(tokens, hidden) if inner_norm else 0
    return layer_norm_flops(tokens, dim) + (3 if gated else 2) * tokens * dim * hidden + inner


def traced_flops(module: nn.Module, num_tokens: int, dim: int) -> int:
    """FLOPs of a token-wise module without a ``flops`` method, traced once per size."""
    cache = module.__dict__.setdefault('_dyt_traced_flops', {})
    if num_tokens not in cache:
        from mmengine.analysis import FlopAnalyzer
        param = next(module.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        was_training = module.training
        analyzer = FlopAnalyzer(module.eval(), (torch.zeros(1, num_tokens, dim, dtype=dtype), ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with torch.no_grad():
            cache[num_tokens] = int(analyzer.total())
        module.train(was_training)
    return cache[num_tokens]


class ViTFlops:
    """FLOPs of one :class:`DyTViT` at one input grid.

    ``dense()`` is the plain pre-trained ViT (what the paper lists as full
    tuning: 17.58 G for ViT-B/16); ``complete()`` adds the adapters and the
    prompts (the model with nothing skipped); ``per_sample(kept)`` counts what
    ``sparse`` execution costs for given kept-token counts. LoRA counts as
    merged (no cost): the inference model is an ordinary ViT.

    Window attention (ViTDet's layout) depends on the grid's shape, so give
    the real ``grid`` for such a ViT; for global attention only the token
    count matters.
    """

    def __init__(self, vit, grid: Optional[Tuple[int, int]] = None):
        self.dim = vit.embed_dims
        self.hidden = int(vit.embed_dims * vit.mlp_ratio)
        self.depth = vit.depth
        self.sites = VARIANT_SITES[vit.variant]
        grid = tuple(grid or vit.grid_size)
        self.num_image_tokens = grid[0] * grid[1]
        self.num_tokens = self.num_image_tokens + vit.num_prefix
        self.num_prefix = vit.num_prefix
        patch = vit.patch_size
        self.stem = self.num_image_tokens * self.dim * vit.in_channels * patch * patch
        # the final norm and CLIP's norm before the blocks
        self.outer_norms = sum(layer_norm_flops(self.num_tokens, self.dim)
                               for norm in (vit.norm, vit.norm_pre)
                               if isinstance(norm, nn.LayerNorm))
        # every block is built alike: the first one tells what they hold
        block = vit.blocks[0]
        windows = [blk.attn.window_size for blk in vit.blocks]
        self.windowed = torch.tensor([w > 0 for w in windows])
        self.window_pairs = torch.tensor([window_pairs(grid, w) if w else 0 for w in windows],
                                         dtype=torch.float64)
        self.gated_mlp = isinstance(block.mlp, SwiGLU)
        self.attn_inner_norm = isinstance(block.attn.norm, nn.LayerNorm)
        self.mlp_inner_norm = isinstance(block.mlp.norm, nn.LayerNorm)
        self.num_prompts = block.num_prompts
        dispatchers = list(block.dispatchers.values())
        self.keeps_prefix = all(getattr(d, 'keeps_prefix', True) for d in dispatchers)
        self.adapters_per_block = sum(
            self._module_flops(a, self.num_tokens + self.num_prompts)
            for a in block.adapters.values())
        # a dispatcher of the user's without a ``flops`` method is counted as free
        self.dispatchers_per_block = sum(
            d.flops(self.num_image_tokens) for d in dispatchers if hasattr(d, 'flops'))

    def _module_flops(self, module: nn.Module, num_tokens: int) -> int:
        if hasattr(module, 'flops'):
            return module.flops(num_tokens)
        return traced_flops(module, num_tokens, self.dim)

    def _blocks(self, attn_tokens, mlp_tokens) -> torch.Tensor:
        """Summed over the blocks; token counts are numbers or ``(B, depth)`` tensors."""
        attn_tokens = torch.as_tensor(attn_tokens, dtype=torch.float64)
        pairs = torch.where(self.windowed, self.window_pairs, attn_tokens * attn_tokens)
        per_block = (attention_flops(attn_tokens, self.dim, self.attn_inner_norm, pairs)
                     + mlp_flops(mlp_tokens, self.dim, self.hidden, self.gated_mlp,
                                 self.mlp_inner_norm))
        return per_block.sum(dim=-1)

    def dense(self) -> float:
        n = self.num_tokens
        return float(self.stem + self._blocks(n, n) + self.outer_norms)

    def complete(self) -> float:
        n = self.num_tokens + self.num_prompts
        blocks = self._blocks(n, n) + self.depth * self.adapters_per_block
        return float(self.stem + blocks + self.outer_norms)

    def per_sample(self, kept: torch.Tensor) -> torch.Tensor:
        """``kept``: ``(B, S)`` kept image tokens per site (``S = depth x sites``)."""
        n = self.num_tokens + self.num_prompts
        kept = kept.double().reshape(kept.shape[0], self.depth, len(self.sites))
        prefix = self.num_prefix + self.num_prompts
        # sample-level dispatch skips the prefix of a skipped sample too
        kept = kept + (prefix if self.keeps_prefix else prefix * (kept > 0))
        by_site = dict(zip(self.sites, kept.unbind(-1)))
        attn_tokens = by_site.get('attn', by_site.get('layer', torch.full_like(kept[..., 0], n)))
        mlp_tokens = by_site.get('mlp', by_site.get('layer', torch.full_like(kept[..., 0], n)))
        blocks = self._blocks(attn_tokens, mlp_tokens)
        extra = self.depth * (self.adapters_per_block + self.dispatchers_per_block)
        return self.stem + self.outer_norms + blocks + extra

    def from_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Per-sample FLOPs from the ``(B, S, N_image)`` masks a forward returned."""
        return self.per_sample(masks.sum(dim=-1))
