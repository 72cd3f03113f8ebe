"""The layers the DyT blocks are built of (timm's names): attention, MLPs, LayerScale, DropPath.

Nothing here dispatches: :class:`~.block.DyTBlock` and the Swin block
assemble these layers into dispatched sites (see :mod:`.site`).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .registry import check_choice
from .site import KeptTokens
from .windows import WindowGather

MLP_ACTS = ('gelu', 'quick_gelu', 'swiglu')
INNER_NORMS = ('attn', 'mlp')  # where EVA-02 may add a LayerNorm


def attention_bias(key_mask: Optional[torch.Tensor], key_bias: Optional[torch.Tensor],
                   dtype: torch.dtype) -> Optional[torch.Tensor]:
    """Additive attention bias ``(B, 1, 1, N)`` from a key mask and per-key logits (or None).

    Masked-out keys get a large finite negative value instead of -inf, which
    keeps rows whose keys are all masked finite (they are multiplied by zero
    afterwards anyway). ``key_bias`` is added to every query's logit of that
    key (ToMe's proportional attention: ``log(size)`` of merged tokens).
    """
    if key_mask is None and key_bias is None:
        return None
    bias = 0 if key_bias is None else key_bias.to(dtype)
    if key_mask is not None:
        bias = bias + (1.0 - key_mask.to(dtype)) * torch.finfo(dtype).min
    return bias[:, None, None, :]


def dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          bias: Optional[torch.Tensor], fused: bool) -> torch.Tensor:
    """``softmax(q k^T / sqrt(head_dim) + bias) v`` of ``(..., N, head_dim)`` heads.

    ``fused``: ``scaled_dot_product_attention``; False spells the two matmuls
    out, so that FLOP counters (fvcore, mmengine) that skip the fused kernel
    see them.
    """
    if fused:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    attn = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias
    return attn.softmax(dim=-1) @ v


def resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """A ``(L, head_dim)`` relative-position table linearly interpolated to ``length`` rows
    (ViTDet's and SAM's resize, for another window or grid)."""
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.T[None].float(), size=length, mode='linear')
    return resized[0].T.to(table.dtype)


def relative_offsets(size: int, device=None) -> torch.Tensor:
    """``(size, size)`` rows of a ``2 * size - 1`` table: query ``i``, key ``j`` -> ``i - j``."""
    positions = torch.arange(size, device=device)
    return positions[:, None] - positions[None, :] + size - 1


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            grid: Tuple[int, int]) -> torch.Tensor:
    """MViTv2's decomposed relative positions (ViTDet, SAM): the ``(..., N, N)`` logits
    ``q . R_h[qh - kh] + q . R_w[qw - kw]`` of the ``(..., N, head_dim)`` queries (unscaled)
    of an ``H x W`` grid, the tables resized to the grid when they were made for another."""
    H, W = grid
    rel_h = resize_rel_pos(rel_pos_h, 2 * H - 1)[relative_offsets(H, q.device)]  # (H, H, d)
    rel_w = resize_rel_pos(rel_pos_w, 2 * W - 1)[relative_offsets(W, q.device)]  # (W, W, d)
    q = q.unflatten(-2, (H, W))
    by_row = torch.einsum('...hwc,hkc->...hwk', q, rel_h.to(q.dtype))
    by_col = torch.einsum('...hwc,wkc->...hwk', q, rel_w.to(q.dtype))
    bias = by_row[..., :, None] + by_col[..., None, :]  # (..., H, W, H_k, W_k)
    return bias.flatten(-2).flatten(-3, -2)


def rotate_pairs(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate each interleaved pair ``(x0, x1)`` of the last dim by the angle given as
    ``sin``/``cos`` (laid out ``[a0, a0, a1, a1, ...]``), the layout of EVA-02's RoPE."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return (x * cos + rotated * sin).to(x.dtype)


def with_identity_prefix(rope: torch.Tensor, num_prefix: int) -> torch.Tensor:
    """Rotary table of the image tokens -> of the whole sequence: the prefix rows
    rotate by zero (sin 0, cos 1), so prefix tokens keep their q and k exactly."""
    sin, cos = rope.chunk(2, dim=-1)
    prefix = sin.new_zeros(num_prefix, sin.shape[-1])
    return torch.cat([torch.cat([prefix, sin]), torch.cat([prefix + 1, cos])], dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention (timm naming), by one of four paths.

    * :meth:`forward`: global attention of ``(B, N, C)`` tokens, with an optional key mask;
    * :meth:`forward_windows`: ViTDet's window attention on the image grid
      (``window_size > 0``);
    * :meth:`forward_rows`: the flat kept rows ``(K, C)`` of a batch (sparse
      mode): the linear layers run on the ``K`` rows, only the attention
      product on the per-sample layout of :class:`~.site.KeptTokens`;
    * :meth:`forward_with_keys`: global attention with per-key logits, which
      also returns the keys token merging matches tokens by.

    Every path takes ``lora`` (the block's :class:`~.adapters.LoRA`, whose
    updates of q, k, v and proj are token-wise, so they run on kept rows as
    well) and, but for token merging, ``rope``: an
    ``(N, 2 * head_dim)`` table of concatenated sin and cos per token of the
    sequence (identity rows for prefix tokens) rotating queries and keys
    (EVA-02's 2-D RoPE). ``inner_norm`` adds EVA-02's LayerNorm before the
    output projection.

    ``rel_pos``: the ``(H, W)`` that ViTDet's decomposed relative position
    tables are made for (the window, or the grid of a global attention), or
    None for none. ``rel_pos_h`` and ``rel_pos_w`` (``(2H - 1, head_dim)``,
    ``(2W - 1, head_dim)``, zero at first as in ViTDet, so that a pre-trained
    ViT computes what it did) add ``q . R_h + q . R_w`` to the logits, on the
    global and the windowed path; a grid of another size resizes them. The
    packed-rows and token-merging paths have no grid and refuse them.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 fused_attn: bool = True, inner_norm: bool = False, norm_eps: float = 1e-6,
                 window_size: int = 0, rel_pos: Optional[Tuple[int, int]] = None):
        super().__init__()
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0 (0: global attention), got {window_size}')
        if dim % num_heads:
            raise ValueError(f'embed_dims {dim} is not divisible by num_heads {num_heads}')
        self.window_size = window_size
        self.windows = WindowGather((window_size, window_size)) if window_size else None
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rel_pos = None if rel_pos is None else tuple(rel_pos)
        if rel_pos is not None:
            if window_size and self.rel_pos != (window_size, window_size):
                raise ValueError(f'relative positions of window attention are made for its '
                                 f'{window_size} x {window_size} window, got rel_pos={rel_pos}')
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos[1] - 1, self.head_dim))

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                lora: Optional[nn.Module] = None,
                rope: Optional[torch.Tensor] = None,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Global attention of ``(B, N, C)`` tokens; ``key_mask`` ``(B, N)`` hides keys;
        relative positions need the tokens' ``grid`` (image tokens only)."""
        q, k, v = self._heads(self.project(x, lora, rope))
        bias = attention_bias(key_mask, None, q.dtype)
        if self.rel_pos is not None:
            if grid is None or x.shape[1] != grid[0] * grid[1]:
                raise ValueError(f'relative positions need the image tokens only, as a grid; '
                                 f'got {x.shape[1]} tokens for grid {grid} (no class, register '
                                 'or prompt tokens)')
            bias = self._with_rel_pos(bias, q, grid)
        return self._output(self._attend(q, k, v, bias), lora)

    def forward_windows(self, x: torch.Tensor, grid: Optional[Tuple[int, int]],
                        lora: Optional[nn.Module] = None,
                        rope: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ViTDet's window attention of the ``(B, H*W, C)`` image tokens of ``grid``: each
        token attends within its ``window_size x window_size`` window (the grid is
        padded to whole windows; padded keys are masked out)."""
        B, N, _ = x.shape
        if self.windows is None:
            raise ValueError('window attention needs window_size > 0; this attention is global')
        if grid is None or N != grid[0] * grid[1]:
            raise ValueError(f'window attention needs the image tokens only, as a grid; got '
                             f'{N} tokens for grid {grid} (no class, register or prompt tokens)')
        layout = self.windows.layout(grid, x)
        qkv = self.windows.partition(self.project(x, lora, rope), layout)
        key_mask = None if layout.key_mask is None else layout.key_mask.repeat(B, 1)
        q, k, v = self._heads(qkv)
        bias = attention_bias(key_mask, None, q.dtype)
        if self.rel_pos is not None:
            bias = self._with_rel_pos(bias, q, self.windows.window)
        out = self._attend(q, k, v, bias)
        return self._output(self.windows.reverse(out, layout, B), lora)

    def forward_rows(self, rows: torch.Tensor, kept: KeptTokens,
                     lora: Optional[nn.Module] = None,
                     rope: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention of the kept ``rows`` ``(K, C)`` of a batch, each sample's among
        themselves; ``rope`` is the whole sequence's table (each row takes its token's)."""
        self._refuse_rel_pos('the packed kept rows of the sparse mode')
        qkv = self.project(rows, lora, None if rope is None else rope[kept.token])
        B, K = kept.valid.shape
        packed = qkv.new_zeros(B, K, qkv.shape[-1])
        packed[kept.sample, kept.slot] = qkv
        # Traced (torch.export / torch.compile), K is a data-dependent size, on
        # which scaled_dot_product_attention guards (Eq(1, K)); the spelled-out
        # matmuls trace.
        fused = self.fused_attn and not torch.compiler.is_compiling()
        q, k, v = self._heads(packed)
        out = self._attend(q, k, v, attention_bias(kept.valid, None, q.dtype), fused)
        return self._output(out[kept.sample, kept.slot], lora)

    def forward_with_keys(self, x: torch.Tensor, key_bias: torch.Tensor,
                          lora: Optional[nn.Module] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Global attention with ``key_bias`` ``(B, N)`` added to each key's logits (token
        merging's log sizes); also returns the keys averaged over heads ``(B, N, head_dim)``."""
        self._refuse_rel_pos('token merging')
        q, k, v = self._heads(self.project(x, lora))
        out = self._attend(q, k, v, attention_bias(None, key_bias, q.dtype))
        return self._output(out, lora), k.mean(dim=1)

    def project(self, x: torch.Tensor, lora: Optional[nn.Module] = None,
                rope: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(..., N, C)`` tokens -> their ``(..., N, 3C)`` projections (LoRA and rotary
        positions included); ``rope`` is ``(N, 2 * head_dim)``."""
        qkv = self.qkv(x)
        if lora is not None and lora.adapts('q', 'k', 'v'):
            # q, k and v are the three thirds of the fused projection, each its own target
            qkv = torch.cat([lora.adapt(target, part, x)
                             for target, part in zip(('q', 'k', 'v'), qkv.chunk(3, dim=-1))],
                            dim=-1)
        if rope is None:
            return qkv
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        sin, cos = rope[:, None].chunk(2, dim=-1)  # broadcast over heads
        q, k = rotate_pairs(q, sin, cos), rotate_pairs(k, sin, cos)
        return torch.stack([q, k, v], dim=-3).flatten(-3)

    def _with_rel_pos(self, bias: Optional[torch.Tensor], q: torch.Tensor,
                      grid: Tuple[int, int]) -> torch.Tensor:
        rel = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, grid)
        return rel if bias is None else rel + bias

    def _refuse_rel_pos(self, path: str) -> None:
        if self.rel_pos is not None:
            raise ValueError(f'relative positions (rel_pos={self.rel_pos}) need a token grid, '
                             f'which {path} does not have: use the mlp dispatch variant, '
                             'without token merging')

    def _heads(self, qkv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, N, 3C)`` projections -> q, k, v, each ``(B, heads, N, head_dim)``."""
        B, N, _ = qkv.shape
        return qkv.reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bias: Optional[torch.Tensor], fused: Optional[bool] = None) -> torch.Tensor:
        """The heads' attention -> ``(B, N, C)``, before the output projection."""
        B, _, N, _ = q.shape
        x = dot_product_attention(q, k, v, bias, self.fused_attn if fused is None else fused)
        # explicit width: in sparse mode N may be 0 (a layer that keeps no token)
        return x.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)

    def _output(self, x: torch.Tensor, lora: Optional[nn.Module] = None) -> torch.Tensor:
        x = self.norm(x)
        out = self.proj(x)
        return out if lora is None else lora.adapt('proj', out, x)


class QuickGELU(nn.Module):
    """OpenAI CLIP's ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    """``fc2(norm(act(fc1(x))))``; ``norm`` (EVA-02's inner LayerNorm) is optional.

    ``lora``: the block's :class:`~.adapters.LoRA` (updates of fc1 and fc2), or None.
    """

    def __init__(self, dim: int, hidden_dim: int, act: str = 'gelu', inner_norm: bool = False,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = QuickGELU() if act == 'quick_gelu' else nn.GELU()
        self.norm = nn.LayerNorm(hidden_dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, lora: Optional[nn.Module] = None) -> torch.Tensor:
        if lora is None:
            return self.fc2(self.norm(self.act(self.fc1(x))))
        hidden = self.norm(self.act(lora.adapt('fc1', self.fc1(x), x)))
        return lora.adapt('fc2', self.fc2(hidden), hidden)


class SwiGLU(nn.Module):
    """EVA-02's gated MLP, ``fc2(norm(silu(fc1_g(x)) * fc1_x(x)))`` (timm naming).

    Token-wise like :class:`Mlp`, so it is one dispatched site and the sparse
    mode runs it on the kept tokens only. ``lora`` may update fc2 only: its
    two input layers have no single ``fc1``.
    """

    def __init__(self, dim: int, hidden_dim: int, inner_norm: bool = False,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden_dim)
        self.fc1_x = nn.Linear(dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, lora: Optional[nn.Module] = None) -> torch.Tensor:
        hidden = self.norm(F.silu(self.fc1_g(x)) * self.fc1_x(x))
        out = self.fc2(hidden)
        return out if lora is None else lora.adapt('fc2', out, hidden)


def build_mlp(dim: int, hidden_dim: int, act: str = 'gelu', inner_norm: bool = False,
              norm_eps: float = 1e-6) -> nn.Module:
    check_choice('mlp act', act, MLP_ACTS)
    if act == 'swiglu':
        return SwiGLU(dim, hidden_dim, inner_norm, norm_eps)
    return Mlp(dim, hidden_dim, act, inner_norm, norm_eps)


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (DINOv2, timm naming ``gamma``)."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, ), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval)."""

    def __init__(self, prob: float = 0.0):
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)
