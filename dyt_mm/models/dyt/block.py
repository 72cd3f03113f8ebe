"""The plain ViT block with dispatched sites (see :mod:`.site`).

``variant`` chooses which residual branches are sites: the MLP, the
attention, both, or the whole layer. Adapters that attach elsewhere (LoRA on
qkv, VPT prompts) are held beside the sites; see :mod:`.adapters`.
"""
from functools import partial
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import DEFAULT_ADAPTER, build_adapters
from .dispatcher import DEFAULT_DISPATCH, build_dispatcher
from .merging import MergeState, merge_tokens
from .registry import check_choice
from .site import DispatchedBlock, KeptTokens

VARIANT_SITES = {
    'mlp': ('mlp', ),
    'attn': ('attn', ),
    'attn_mlp': ('attn', 'mlp'),
    'layer': ('layer', ),
}
VARIANTS = tuple(VARIANT_SITES)
TOKEN_MIXING_SITES = ('attn', 'layer')


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


def rotate_pairs(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate each interleaved pair ``(x0, x1)`` of the last dim by the angle given as
    ``sin``/``cos`` (laid out ``[a0, a0, a1, a1, ...]``), the layout of EVA-02's RoPE."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return (x * cos + rotated * sin).to(x.dtype)


def window_partition(x: torch.Tensor, window: Tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * windows, wh * ww, C)``, windows in row-major order."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // window[0], window[0], W // window[1], window[1], C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window[0] * window[1], C)


class Attention(nn.Module):
    """Multi-head self-attention with an optional key mask (timm naming).

    Takes ``(B, N, C)`` tokens, or the flat kept rows ``(K, C)`` of a batch
    together with their :class:`KeptTokens` layout (sparse mode): then the
    two linear layers run on the ``K`` rows and only the attention product on
    the padded per-sample layout.

    ``rope``: an ``(N, 2 * head_dim)`` table of concatenated sin and cos per
    token of the sequence (identity rows for prefix tokens) rotating queries
    and keys (EVA-02's 2-D RoPE); kept rows take their own token's row.
    ``inner_norm`` adds EVA-02's LayerNorm before the output projection.
    ``key_bias``: ``(B, N)`` logits added per key (token merging's log sizes);
    ``return_keys`` also returns the keys averaged over heads ``(B, N, head_dim)``,
    what token merging matches tokens by.

    ``window_size > 0``: ViTDet's window attention, each token attends within
    its ``window_size x window_size`` window of the image grid (the grid is
    zero-padded to whole windows; padded keys are masked out). The sequence
    must then hold image tokens only, and dispatch may not touch attention.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 fused_attn: bool = True, inner_norm: bool = False, norm_eps: float = 1e-6,
                 window_size: int = 0):
        super().__init__()
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0 (0: global attention), got {window_size}')
        self.window_size = window_size
        if dim % num_heads:
            raise ValueError(f'embed_dims {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        # fused_attn=False spells the two matmuls out, so that FLOP counters
        # (fvcore, mmengine) that skip scaled_dot_product_attention see them.
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                kept: Optional[KeptTokens] = None,
                qkv_adapter: Optional[nn.Module] = None,
                rope: Optional[torch.Tensor] = None, key_bias: Optional[torch.Tensor] = None,
                return_keys: bool = False, grid: Optional[Tuple[int, int]] = None):
        qkv = self.qkv(x)
        if qkv_adapter is not None:  # LoRA: token-wise, so it runs on kept rows as well
            qkv = qkv + qkv_adapter(x)
        if rope is not None:
            qkv = self._rotate(qkv, rope if kept is None else rope[kept.token])
        if kept is None and self.window_size:
            return self.proj(self.norm(self._attend_in_windows(qkv, grid)))
        if kept is None:
            out, keys = self._attend(qkv, key_mask, key_bias=key_bias)
            out = self.proj(self.norm(out))
            return (out, keys) if return_keys else out
        B, K = kept.valid.shape
        packed = qkv.new_zeros(B, K, qkv.shape[-1])
        packed[kept.sample, kept.slot] = qkv
        # Traced (torch.export / torch.compile), K is a data-dependent size, on
        # which scaled_dot_product_attention guards (Eq(1, K)); the spelled-out
        # matmuls trace.
        fused = self.fused_attn and not torch.compiler.is_compiling()
        out, _ = self._attend(packed, kept.valid, fused)
        return self.proj(self.norm(out[kept.sample, kept.slot]))

    def _rotate(self, qkv: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        """Rotary positions on q and k of ``(..., N, 3C)`` projections; ``rope`` is ``(N, 2 hd)``."""
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        sin, cos = rope[:, None].chunk(2, dim=-1)  # broadcast over heads
        q, k = rotate_pairs(q, sin, cos), rotate_pairs(k, sin, cos)
        return torch.stack([q, k, v], dim=-3).flatten(-3)

    def _attend_in_windows(self, qkv: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Window attention of ``(B, H*W, 3C)`` image-token projections."""
        B, N, C3 = qkv.shape
        if grid is None or N != grid[0] * grid[1]:
            raise ValueError(f'window attention needs the image tokens only, as a grid; got '
                             f'{N} tokens for grid {grid} (no class, register or prompt tokens)')
        (H, W), ws = grid, self.window_size
        pad_h, pad_w = -H % ws, -W % ws
        rows, cols = (H + pad_h) // ws, (W + pad_w) // ws

        def to_windows(x: torch.Tensor) -> torch.Tensor:  # (b, H, W, c) -> (b*windows, ws*ws, c)
            return window_partition(F.pad(x, (0, 0, 0, pad_w, 0, pad_h)), (ws, ws))

        key_mask = None
        if pad_h or pad_w:
            key_mask = to_windows(qkv.new_ones(1, H, W, 1)).squeeze(-1).repeat(B, 1)
        out, _ = self._attend(to_windows(qkv.reshape(B, H, W, C3)), key_mask)
        out = out.reshape(B, rows, cols, ws, ws, -1).transpose(2, 3)
        return out.reshape(B, rows * ws, cols * ws, -1)[:, :H, :W].reshape(B, N, -1)

    def _attend(self, qkv: torch.Tensor, key_mask: Optional[torch.Tensor],
                fused: Optional[bool] = None, key_bias: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, 3C)`` projections -> ``(B, N, C)`` attention output, before ``proj``,
        and the keys averaged over heads ``(B, N, head_dim)``."""
        B, N, _ = qkv.shape
        qkv = qkv.reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = attention_bias(key_mask, key_bias, q.dtype)
        if self.fused_attn if fused is None else fused:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias
            x = attn.softmax(dim=-1) @ v
        # explicit width: in sparse mode N may be 0 (a layer that keeps no token)
        return x.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim), k.mean(dim=1)


class QuickGELU(nn.Module):
    """OpenAI CLIP's ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    """``fc2(norm(act(fc1(x))))``; ``norm`` (EVA-02's inner LayerNorm) is optional."""

    def __init__(self, dim: int, hidden_dim: int, act: str = 'gelu', inner_norm: bool = False,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = QuickGELU() if act == 'quick_gelu' else nn.GELU()
        self.norm = nn.LayerNorm(hidden_dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


class SwiGLU(nn.Module):
    """EVA-02's gated MLP, ``fc2(norm(silu(fc1_g(x)) * fc1_x(x)))`` (timm naming).

    Token-wise like :class:`Mlp`, so it is one dispatched site and the sparse
    mode runs it on the kept tokens only.
    """

    def __init__(self, dim: int, hidden_dim: int, inner_norm: bool = False,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden_dim)
        self.fc1_x = nn.Linear(dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim, eps=norm_eps) if inner_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(F.silu(self.fc1_g(x)) * self.fc1_x(x)))


MLP_ACTS = ('gelu', 'quick_gelu', 'swiglu')
INNER_NORMS = ('attn', 'mlp')  # where EVA-02 may add a LayerNorm


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


def with_identity_prefix(rope: torch.Tensor, num_prefix: int) -> torch.Tensor:
    """Rotary table of the image tokens -> of the whole sequence: the prefix rows
    rotate by zero (sin 0, cos 1), so prefix tokens keep their q and k exactly."""
    sin, cos = rope.chunk(2, dim=-1)
    prefix = sin.new_zeros(num_prefix, sin.shape[-1])
    return torch.cat([torch.cat([prefix, sin]), torch.cat([prefix + 1, cos])], dim=-1)


class DyTBlock(DispatchedBlock):
    """Pre-norm ViT block whose ``variant`` chooses what the dispatcher skips.

    * ``mlp``: only the MLP is skipped (default); attention sees all tokens.
    * ``attn``: skipped tokens take no part in self-attention.
    * ``attn_mlp``: separate dispatchers and adapters for attention and MLP.
    * ``layer``: one dispatcher skips the whole layer.

    ``adapter`` and ``dispatch`` are config dicts of registered modules (see
    :mod:`.adapters`, :mod:`.dispatcher`), or None for none. Without a
    dispatcher every mode computes the complete block (masks are all ones).

    What the pre-trained families differ in: ``mlp_act`` (gelu, quick_gelu for
    OpenAI CLIP, swiglu for EVA-02), ``layer_scale`` (initial value of
    DINOv2's LayerScale, None for none), ``inner_norms`` (EVA-02's LayerNorms
    inside ``'attn'`` and/or ``'mlp'``). LayerScale belongs to its branch: a skipped
    token skips it too.

    ``forward`` returns the new tokens and one ``(B, N_image)`` mask per site.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, fused_attn: bool = True,
                 norm_eps: float = 1e-6, mlp_act: str = 'gelu',
                 layer_scale: Optional[float] = None, inner_norms: Sequence[str] = (),
                 window_size: int = 0):
        super().__init__()
        check_choice('dispatch variant', variant, VARIANTS)
        if window_size and variant != 'mlp':
            raise ValueError(f"window attention (window_size={window_size}) needs the 'mlp' "
                             f"dispatch variant, got {variant!r}: the sparse mode gathers the "
                             'kept tokens of a whole sample, not of a window')
        for where in inner_norms:
            check_choice('inner norm', where, INNER_NORMS)
        self.variant = variant
        self.sites = VARIANT_SITES[variant]
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn, 'attn' in inner_norms,
                              norm_eps, window_size)
        self.ls1 = nn.Identity() if layer_scale is None else LayerScale(dim, layer_scale)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = build_mlp(dim, int(dim * mlp_ratio), mlp_act, 'mlp' in inner_norms, norm_eps)
        self.ls2 = nn.Identity() if layer_scale is None else LayerScale(dim, layer_scale)
        self.drop_path = DropPath(drop_path)
        self.dispatchers = nn.ModuleDict({} if dispatch is None else {
            site: build_dispatcher(dispatch, dim) for site in self.sites})
        # keyed by dispatch site (parallel adapters) or attach point ('qkv', 'prompts')
        self.adapters = nn.ModuleDict(build_adapters(adapter, dim, self.sites))

    @property
    def num_prompts(self) -> int:
        prompts = self._adapter('prompts')
        return 0 if prompts is None else prompts.num_prompts

    def _adapter(self, key: str) -> Optional[nn.Module]:
        return self.adapters[key] if key in self.adapters else None

    # The three residual branches a site can dispatch: on (B, N, C) tokens with an optional
    # key mask, or (sparse mode, token-mixing sites) on the kept rows with their layout.
    # ``rope``: the rotary table of the whole sequence (see Attention), or None; ``grid``:
    # the image grid (for window attention).
    def _attn_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                     kept: Optional[KeptTokens] = None, rope: Optional[torch.Tensor] = None,
                     grid: Optional[Tuple[int, int]] = None):
        return self.ls1(self.attn(self.norm1(x), key_mask, kept, self._adapter('qkv'), rope,
                                  grid=grid))

    def _mlp_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                    kept: Optional[KeptTokens] = None, rope: Optional[torch.Tensor] = None,
                    grid: Optional[Tuple[int, int]] = None):
        return self.ls2(self.mlp(self.norm2(x)))

    def _layer_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                      kept: Optional[KeptTokens] = None, rope: Optional[torch.Tensor] = None,
                      grid: Optional[Tuple[int, int]] = None):
        attn = self.drop_path(self._attn_branch(x, key_mask, kept, rope, grid))
        return attn + self.drop_path(self._mlp_branch(x + attn))

    def _site(self, site: str, x: torch.Tensor, num_prefix: int,
              rope: Optional[torch.Tensor] = None,
              grid: Optional[Tuple[int, int]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        # _layer_branch applies stochastic depth to its two parts itself.
        drop_path = self.drop_path if site != 'layer' else nn.Identity()
        branch = partial(getattr(self, f'_{site}_branch'), rope=rope, grid=grid)
        return self.run_site(site, branch, x, num_prefix, drop_path,
                             token_mixing=site in TOKEN_MIXING_SITES)

    def forward(self, x: torch.Tensor, num_prefix: int, rope: Optional[torch.Tensor] = None,
                merge: Optional[MergeState] = None, grid: Optional[Tuple[int, int]] = None
                ) -> Tuple[torch.Tensor, List[torch.Tensor], Optional[MergeState]]:
        """Prompts (VPT-deep) join the prefix for this block only.

        ``rope``: ``(N_image, 2 * head_dim)`` rotary sin/cos of the image tokens
        (EVA-02), or None; prefix tokens are not rotated. ``merge``: token
        merging's state (ToMe, see :mod:`.merging`), or None for none; merging
        happens between attention and the MLP, so the MLP site (and its mask)
        sees the merged tokens. ``grid``: the image grid ``(H, W)``, which window
        attention needs. Returns the tokens, one mask per site and the new merge
        state.
        """
        prompts = self._adapter('prompts')
        if prompts is None:
            return self._forward_sites(x, num_prefix, rope, merge, grid)
        x, masks, merge = self._forward_sites(prompts.insert(x, num_prefix),
                                              num_prefix + prompts.num_prompts, rope, merge,
                                              grid)
        return prompts.remove(x, num_prefix), masks, merge

    def _attend_and_merge(self, x: torch.Tensor, num_prefix: int, rope: Optional[torch.Tensor],
                          merge: Optional[MergeState], grid: Optional[Tuple[int, int]]
                          ) -> Tuple[torch.Tensor, Optional[MergeState]]:
        """The undispatched attention, then (with ``merge``) token merging by its keys."""
        if merge is None:
            return x + self.drop_path(self._attn_branch(x, rope=rope, grid=grid)), None
        attn, keys = self.attn(self.norm1(x), qkv_adapter=self._adapter('qkv'),
                               key_bias=merge.attention_bias(num_prefix), return_keys=True)
        return merge_tokens(x + self.drop_path(self.ls1(attn)), keys, num_prefix, merge)

    def _forward_sites(self, x: torch.Tensor, num_prefix: int, rope: Optional[torch.Tensor],
                       merge: Optional[MergeState], grid: Optional[Tuple[int, int]]
                       ) -> Tuple[torch.Tensor, List[torch.Tensor], Optional[MergeState]]:
        if rope is not None:
            rope = with_identity_prefix(rope, num_prefix)
        masks = []
        if 'layer' in self.sites:
            x, mask = self._site('layer', x, num_prefix, rope, grid)
            return x, [mask], merge
        if 'attn' in self.sites:
            x, mask = self._site('attn', x, num_prefix, rope, grid)
            masks.append(mask)
        else:
            x, merge = self._attend_and_merge(x, num_prefix, rope, merge, grid)
        if 'mlp' in self.sites:
            x, mask = self._site('mlp', x, num_prefix, rope, grid)
            masks.append(mask)
        else:
            x = x + self.drop_path(self._mlp_branch(x))
        return x, masks, merge
