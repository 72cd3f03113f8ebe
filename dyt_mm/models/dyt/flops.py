"""Analytic FLOPs of the DyT ViT (one multiply-add = one FLOP, fvcore's convention).

Counted like fvcore counts the same modules: linear and conv layers as
in x out per output position (no bias), the two attention matmuls, LayerNorm
as 5 x elements, einsum/bmm/matmul as their multiply-adds; element-wise ops,
softmax, GELU and ReLU are free. Dense ViT-B/16 at 224 x 224 comes to 17.58 G.
What the pre-trained families add is counted alike: CLIP's norm before the
blocks, EVA-02's SwiGLU (three linear layers) and inner LayerNorms; LayerScale,
QuickGELU and rotary embeddings are element-wise (free).

ViTDet's relative positions count as their two einsums (``q . R_h``, ``q . R_w``).

Per-sample cost follows the masks: a dispatched branch costs its FLOPs at the
number of kept tokens (prefix tokens included), as the ``sparse`` mode runs it.
Adapters and dispatchers report their own cost (``flops``); an unmerged LoRA
costs its low-rank products on the tokens each target layer sees (on the
MLP's: only the kept tokens), a merged one nothing; VPT prompts make every
block's sequence longer; token merging makes it shorter block by block.
"""
import math
from typing import Optional, Tuple

import torch
from torch import nn

from .adapters import attach_point
from .block import VARIANT_SITES
from .layers import SwiGLU
from .merging import merge_schedule, merging_flops


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


def rel_pos_flops(grid, window_size, dim):
    """ViTDet's decomposed relative positions: each query's ``q . R_h`` and ``q . R_w`` with
    the keys' rows and columns of its window (of the grid padded to whole windows) or, for
    global attention (``window_size`` 0), of the grid."""
    if not window_size:
        return grid[0] * grid[1] * dim * (grid[0] + grid[1])
    return window_pairs(grid, window_size) // window_size**2 * dim * 2 * window_size


def window_padding_flops(grid, window_size, dim):
    """What an implementation that pads the grid *before* the projections (ViTDet's, SAM's)
    spends beyond ours: q, k, v and the output projection of the padding slots. Ours
    projects the real tokens only, so this is never part of its count."""
    if not window_size:
        return 0
    padded = window_pairs(grid, window_size) // window_size**2
    return (padded - grid[0] * grid[1]) * 4 * dim * dim


def mlp_flops(tokens, dim, hidden, gated=False, inner_norm=False):
    """norm2 + fc1 (+ the gate's fc1_g) (+ inner norm) + fc2."""
    inner = layer_norm_flops(tokens, hidden) if inner_norm else 0
    return layer_norm_flops(tokens, dim) + (3 if gated else 2) * tokens * dim * hidden + inner


def window_attention_flops(tokens, padded_tokens, dim, window_area):
    """Swin's norm1 (on the tokens) + qkv, the two matmuls within windows and proj (on the
    tokens padded to whole windows)."""
    return (layer_norm_flops(tokens, dim) + 4 * padded_tokens * dim * dim
            + 2 * padded_tokens * window_area * dim)


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


def module_flops(module: nn.Module, num_tokens: int, dim: int) -> int:
    """An adapter's or dispatcher's own ``flops``, else traced."""
    if hasattr(module, 'flops'):
        return module.flops(num_tokens)
    return traced_flops(module, num_tokens, dim)


class ViTFlops:
    """FLOPs of one :class:`DyTViT` at one input grid.

    ``dense()`` is the plain pre-trained ViT (what the paper lists as full
    tuning: 17.58 G for ViT-B/16); ``merged()`` the plain ViT with this ViT's
    token merging (the paper's Full + ToMe); ``complete()`` adds the adapters
    and the prompts (the model with nothing skipped, merging if it merges);
    ``per_sample(kept)`` counts what ``sparse`` execution costs for given
    kept-token counts. An unmerged LoRA counts in ``complete`` and
    ``per_sample`` (its updates of q, k, v, proj on the attention's tokens,
    of fc1, fc2 on the MLP's); merged (``merge_adapters``), the model is an
    ordinary ViT and LoRA costs nothing.

    Token merging (``vit.merge_r``) shrinks the token count block by block
    along a fixed schedule: each block's attention and MLP are counted at
    their own counts, plus the merging itself (mostly the key similarities
    of the two token sets).

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
        # every block is built alike: the first one tells what they hold
        block = vit.blocks[0]
        windows = [blk.attn.window_size for blk in vit.blocks]
        self.windowed = torch.tensor([w > 0 for w in windows])
        self.window_pairs = torch.tensor([window_pairs(grid, w) if w else 0 for w in windows],
                                         dtype=torch.float64)
        # ViTDet's relative positions (their blocks see every token: MLP dispatch only)
        self.rel_pos = sum(rel_pos_flops(grid, blk.attn.window_size, self.dim)
                           for blk in vit.blocks if blk.attn.rel_pos is not None)
        # not in any figure of ours: to compare with counts of ViTDet's own code
        self.padded_projections = sum(window_padding_flops(grid, w, self.dim) for w in windows)
        self.gated_mlp = isinstance(block.mlp, SwiGLU)
        self.attn_inner_norm = isinstance(block.attn.norm, nn.LayerNorm)
        self.mlp_inner_norm = isinstance(block.mlp.norm, nn.LayerNorm)
        self.num_prompts = block.num_prompts
        self.merge_r = vit.merge_r
        # image tokens at each block's attention and MLP (all of them without merging)
        schedule = merge_schedule(self.num_image_tokens, self.merge_r, self.depth)
        self.attn_image_tokens = torch.tensor([a for a, _ in schedule], dtype=torch.float64)
        self.mlp_image_tokens = torch.tensor([m for _, m in schedule], dtype=torch.float64)
        self.merging = sum(merging_flops(a, vit.embed_dims // vit.num_heads, self.dim,
                                         self.merge_r) for a, _ in schedule)
        # CLIP's norm before the blocks sees every token, the final norm what merging left
        norms = [(vit.norm_pre, self.num_tokens), (vit.norm, self.num_prefix + schedule[-1][1])]
        self.outer_norms = sum(layer_norm_flops(tokens, self.dim)
                               for norm, tokens in norms if isinstance(norm, nn.LayerNorm))
        self.dense_outer_norms = sum(layer_norm_flops(self.num_tokens, self.dim)
                                     for norm, _ in norms if isinstance(norm, nn.LayerNorm))
        dispatchers = list(block.dispatchers.values())
        self.keeps_prefix = all(getattr(d, 'keeps_prefix', True) for d in dispatchers)
        prefix = self.num_prefix + self.num_prompts
        self.adapters = sum(module_flops(a, int(self._tokens_at(key)[i]) + prefix, self.dim)
                            for key, a in block.adapters.items() for i in range(self.depth)
                            if attach_point(a) != 'linears')
        # an unmerged LoRA's multiply-adds per token of the attention and of the MLP
        lora = block.adapters['linears'] if 'linears' in block.adapters else None
        self.lora_attn = lora.flops_per_token(('q', 'k', 'v', 'proj')) if lora else 0
        self.lora_mlp = lora.flops_per_token(('fc1', 'fc2')) if lora else 0
        # a dispatcher of the user's without a ``flops`` method is counted as free
        self.dispatchers = sum(d.flops(int(self._tokens_at(site)[i]))
                               for site, d in block.dispatchers.items() for i in range(self.depth)
                               if hasattr(d, 'flops'))

    def _tokens_at(self, where: str) -> torch.Tensor:
        """``(depth,)`` image tokens at a site or attach point: the MLP's, or attention's
        (attention, the whole layer, prompts)."""
        return self.mlp_image_tokens if where == 'mlp' else self.attn_image_tokens

    def _blocks(self, attn_tokens, mlp_tokens) -> torch.Tensor:
        """Summed over the blocks; token counts are numbers or ``(B, depth)`` tensors."""
        attn_tokens = torch.as_tensor(attn_tokens, dtype=torch.float64)
        pairs = torch.where(self.windowed, self.window_pairs, attn_tokens * attn_tokens)
        per_block = (attention_flops(attn_tokens, self.dim, self.attn_inner_norm, pairs)
                     + mlp_flops(mlp_tokens, self.dim, self.hidden, self.gated_mlp,
                                 self.mlp_inner_norm))
        return per_block.sum(dim=-1)

    def _lora(self, attn_tokens, mlp_tokens) -> torch.Tensor:
        """An unmerged LoRA's FLOPs summed over the blocks, at the tokens that run each
        branch (numbers or ``(B, depth)`` tensors)."""
        return (self.lora_attn * torch.as_tensor(attn_tokens, dtype=torch.float64)
                + self.lora_mlp * torch.as_tensor(mlp_tokens, dtype=torch.float64)).sum(dim=-1)

    def dense(self) -> float:
        n = self.num_tokens
        return float(self.stem + self._blocks(n, n) + self.rel_pos + self.dense_outer_norms)

    def _unskipped_blocks(self) -> float:
        prefix = self.num_prefix + self.num_prompts
        attn, mlp = self.attn_image_tokens + prefix, self.mlp_image_tokens + prefix
        return (self._blocks(attn, mlp) + self._lora(attn, mlp)).item() + self.merging

    def merged(self) -> float:
        """The plain ViT (no adapters, no prompts) with this ViT's token merging."""
        blocks = self._blocks(self.attn_image_tokens + self.num_prefix,
                              self.mlp_image_tokens + self.num_prefix).item()
        return float(self.stem + blocks + self.merging + self.outer_norms)

    def complete(self) -> float:
        return float(self.stem + self._unskipped_blocks() + self.rel_pos + self.adapters
                     + self.outer_norms)

    def per_sample(self, kept: torch.Tensor) -> torch.Tensor:
        """``kept``: ``(B, S)`` kept image tokens per site (``S = depth x sites``)."""
        kept = kept.double().reshape(kept.shape[0], self.depth, len(self.sites))
        prefix = self.num_prefix + self.num_prompts
        # sample-level dispatch skips the prefix of a skipped sample too
        kept = kept + (prefix if self.keeps_prefix else prefix * (kept > 0))
        by_site = dict(zip(self.sites, kept.unbind(-1)))
        every = {where: (self._tokens_at(where) + prefix).expand_as(kept[..., 0])
                 for where in ('attn', 'mlp')}
        attn_tokens = by_site.get('attn', by_site.get('layer', every['attn']))
        mlp_tokens = by_site.get('mlp', by_site.get('layer', every['mlp']))
        blocks = self._blocks(attn_tokens, mlp_tokens) + self._lora(attn_tokens, mlp_tokens)
        extra = self.adapters + self.dispatchers + self.merging + self.rel_pos
        return self.stem + self.outer_norms + blocks + extra

    def from_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Per-sample FLOPs from the ``(B, S, N_image)`` masks a forward returned."""
        return self.per_sample(masks.sum(dim=-1))


class SwinFlops:
    """FLOPs of one :class:`~.swin.DyTSwin` at one finest token grid (the interface of
    :class:`ViTFlops`: ``dense``, ``complete``, ``per_sample``, ``from_masks``).

    Window attention is counted on the tokens padded to whole windows, as it
    runs. A Swin returns its masks on the finest grid, so the kept counts
    that ``per_sample`` takes are kept *areas*: a token of stage ``s`` covers
    ``4^s`` finest tokens.
    """

    def __init__(self, swin, grid: Optional[Tuple[int, int]] = None):
        grid = tuple(grid or swin.grid_size)
        self.num_image_tokens = grid[0] * grid[1]
        C0, patch = swin.stage_dims[0], swin.patch_size
        # everything outside the MLPs: stem, attention, patch merging, final norm
        fixed = (self.num_image_tokens * C0 * swin.in_channels * patch * patch
                 + layer_norm_flops(self.num_image_tokens, C0))
        tokens, dims, areas, adapters, dispatchers = [], [], [], 0, 0
        for s, stage in enumerate(swin.layers):
            C, n = swin.stage_dims[s], swin.stage_grid(grid, s)
            if stage.downsample is not None:
                fixed += layer_norm_flops(n[0] * n[1], 4 * swin.stage_dims[s - 1])
                fixed += n[0] * n[1] * 4 * swin.stage_dims[s - 1] * C
            for block in stage.blocks:
                padded = [-(-g // w) * w for g, w in zip(n, block.window)]
                fixed += window_attention_flops(n[0] * n[1], padded[0] * padded[1], C,
                                                block.window[0] * block.window[1])
                adapters += sum(module_flops(a, n[0] * n[1], C) for a in block.adapters.values())
                # a dispatcher of the user's without a ``flops`` method is counted as free
                dispatchers += sum(d.flops(n[0] * n[1]) for d in block.dispatchers.values()
                                   if hasattr(d, 'flops'))
                tokens.append(n[0] * n[1])
                dims.append(C)
                areas.append(4**s)
        fixed += layer_norm_flops(tokens[-1], dims[-1])
        self.fixed, self.adapters, self.dispatchers = fixed, adapters, dispatchers
        self.site_tokens = torch.tensor(tokens, dtype=torch.float64)
        self.site_dims = torch.tensor(dims, dtype=torch.float64)
        self.site_areas = torch.tensor(areas, dtype=torch.float64)
        self.mlp_ratio = swin.mlp_ratio

    def _mlps(self, tokens: torch.Tensor) -> torch.Tensor:
        """The MLP sites' FLOPs at ``(..., S)`` token counts, summed over the sites."""
        return mlp_flops(tokens, self.site_dims, self.site_dims * self.mlp_ratio).sum(dim=-1)

    def dense(self) -> float:
        return float(self.fixed + self._mlps(self.site_tokens))

    def complete(self) -> float:
        return self.dense() + self.adapters

    def per_sample(self, kept: torch.Tensor) -> torch.Tensor:
        """``kept``: ``(B, S)`` kept areas per site (finest-grid tokens; the masks' sums)."""
        mlps = self._mlps(kept.double() / self.site_areas)
        return self.fixed + mlps + self.adapters + self.dispatchers

    def from_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Per-sample FLOPs from the ``(B, S, N_finest)`` masks a forward returned."""
        return self.per_sample(masks.sum(dim=-1))
