"""Transformer block with token dispatch, in three execution modes.

A dispatched *site* is a residual branch ``f`` (the MLP, the attention, or the
whole layer) with its own dispatcher and a parallel adapter::

    x' = x + mask * f(x) + adapter(x)

Either may be absent (``dispatch=None``: nothing is skipped, as in AdaptFormer,
LoRA, VPT, full tuning, linear probing; ``adapter=None``), and adapters that
attach elsewhere (LoRA on qkv, VPT prompts) are held beside the sites; see
:mod:`.adapters`.

Execution modes (same weights, same outputs in eval):

* ``masked``   -- training form: ``f`` runs on every token, its output is
  multiplied by the (straight-through) mask;
* ``complete`` -- nothing is skipped (the self-distillation teacher);
* ``sparse``   -- inference form: only the kept tokens of the whole batch are
  gathered, ``f`` runs on them, and the result is scattered back.
"""
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import DEFAULT_ADAPTER, build_adapters
from .dispatcher import DEFAULT_DISPATCH, build_dispatcher
from .registry import check_choice

MODES = ('masked', 'complete', 'sparse')
VARIANT_SITES = {
    'mlp': ('mlp', ),
    'attn': ('attn', ),
    'attn_mlp': ('attn', 'mlp'),
    'layer': ('layer', ),
}
VARIANTS = tuple(VARIANT_SITES)
TOKEN_MIXING_SITES = ('attn', 'layer')


def key_padding_bias(key_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias ``(B, 1, 1, N)`` that removes masked-out keys.

    A large finite negative value instead of -inf keeps rows whose keys are
    all masked finite (they are multiplied by zero afterwards anyway).
    """
    bias = (1.0 - key_mask.to(dtype)) * torch.finfo(dtype).min
    return bias[:, None, None, :]


class KeptTokens(NamedTuple):
    """Where the kept tokens of a batch sit when packed per sample.

    The tokens themselves travel as flat rows ``(K, C)`` (every kept token of
    the batch, in order), so that every token-wise layer runs on exactly the
    kept tokens. Only attention needs them per sample: row ``i`` goes to slot
    ``slot[i]`` of sample ``sample[i]`` in a ``(B, K_max)`` layout whose
    ``valid`` key mask hides the padding.
    """
    sample: torch.Tensor
    slot: torch.Tensor
    valid: torch.Tensor


class Attention(nn.Module):
    """Multi-head self-attention with an optional key mask (timm naming).

    Takes ``(B, N, C)`` tokens, or the flat kept rows ``(K, C)`` of a batch
    together with their :class:`KeptTokens` layout (sparse mode): then the
    two linear layers run on the ``K`` rows and only the attention product on
    the padded per-sample layout.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 fused_attn: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'embed_dims {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        # fused_attn=False spells the two matmuls out, so that FLOP counters
        # (fvcore, mmengine) that skip scaled_dot_product_attention see them.
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                kept: Optional[KeptTokens] = None,
                qkv_adapter: Optional[nn.Module] = None) -> torch.Tensor:
        qkv = self.qkv(x)
        if qkv_adapter is not None:  # LoRA: token-wise, so it runs on kept rows as well
            qkv = qkv + qkv_adapter(x)
        if kept is None:
            return self.proj(self._attend(qkv, key_mask))
        B, K = kept.valid.shape
        packed = qkv.new_zeros(B, K, qkv.shape[-1])
        packed[kept.sample, kept.slot] = qkv
        # Traced (torch.export / torch.compile), K is a data-dependent size, on
        # which scaled_dot_product_attention guards (Eq(1, K)); the spelled-out
        # matmuls trace.
        fused = self.fused_attn and not torch.compiler.is_compiling()
        return self.proj(self._attend(packed, kept.valid, fused)[kept.sample, kept.slot])

    def _attend(self, qkv: torch.Tensor, key_mask: Optional[torch.Tensor],
                fused: Optional[bool] = None) -> torch.Tensor:
        """``(B, N, 3C)`` projections -> ``(B, N, C)`` attention output, before ``proj``."""
        B, N, _ = qkv.shape
        qkv = qkv.reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = None if key_mask is None else key_padding_bias(key_mask, q.dtype)
        if self.fused_attn if fused is None else fused:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias
            x = attn.softmax(dim=-1) @ v
        # explicit width: in sparse mode N may be 0 (a layer that keeps no token)
        return x.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


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


def kept_rows(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices ``(K,)`` of the kept tokens of a ``(B, N)`` mask, in order.

    ``K`` depends on the data. Eager PyTorch reads it from the device (a host
    sync); ``torch.export`` and ``torch.compile`` carry it as an unbacked
    size, so the graph has no branch on it.
    """
    return mask.reshape(-1).nonzero().squeeze(1)


def add_rows(out: torch.Tensor, rows: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """``out`` with ``update`` added in place at the flat token ``rows``.

    ``out`` must be a fresh tensor of the caller's (the residual sum): the add
    is done in place, which saves a copy of the whole batch per block.
    """
    # A sum can inherit transposed strides (patch embedding without a class token).
    out = out.contiguous()
    out.view(-1, out.shape[-1]).index_add_(0, rows, update)
    return out


def keeps_every_token(rows: torch.Tensor, mask: torch.Tensor) -> bool:
    """Eager only: whether ``rows`` are all the tokens (common in early layers).

    Eager PyTorch already knows the count, and then skips the gathered copy,
    which would only cost time and push peak memory above the complete mode's.
    Traced, the general path serves every count, so the graph has no branch on
    data (False without looking at the count).
    """
    return not torch.compiler.is_compiling() and rows.shape[0] == mask.numel()


def sparse_tokenwise(fn: Callable, x: torch.Tensor, mask: torch.Tensor,
                     out: torch.Tensor) -> torch.Tensor:
    """Add ``fn`` of the kept tokens of the whole batch into ``out``.

    One gather and one scatter for the batch.
    """
    rows = kept_rows(mask)
    if keeps_every_token(rows, mask):
        return out.add_(fn(x))
    return add_rows(out, rows, fn(x.reshape(-1, x.shape[-1]).index_select(0, rows)))


def sparse_token_mixing(fn: Callable, x: torch.Tensor, mask: torch.Tensor,
                        out: torch.Tensor) -> torch.Tensor:
    """Like :func:`sparse_tokenwise` for branches where tokens interact.

    ``fn(rows, kept=...)`` gets the kept tokens of the whole batch as flat rows
    and their per-sample layout (:class:`KeptTokens`): token-wise layers run
    on exactly the kept tokens, attention on each sample's kept tokens (in
    their original order) padded to the largest count.
    """
    B, N, C = x.shape
    rows = kept_rows(mask)
    if keeps_every_token(rows, mask):
        return out.add_(fn(x))
    counts = mask.sum(dim=1).long()
    sample = torch.div(rows, N, rounding_mode='floor')
    slot = torch.arange(rows.shape[0], device=x.device) - (counts.cumsum(0) - counts)[sample]
    # The largest count as a size that tracing carries like the row count (a
    # nonzero: the slots some sample fills), not a Python int from .item().
    slots = (torch.arange(N, device=x.device) < counts.max()).nonzero().squeeze(1)
    valid = (slots < counts[:, None]).to(x.dtype)
    kept = KeptTokens(sample, slot, valid)
    return add_rows(out, rows, fn(x.reshape(-1, C).index_select(0, rows), kept=kept))


class DyTBlock(nn.Module):
    """Pre-norm ViT block whose ``variant`` chooses what the dispatcher skips.

    * ``mlp``: only the MLP is skipped (default); attention sees all tokens.
    * ``attn``: skipped tokens take no part in self-attention.
    * ``attn_mlp``: separate dispatchers and adapters for attention and MLP.
    * ``layer``: one dispatcher skips the whole layer.

    ``adapter`` and ``dispatch`` are config dicts of registered modules (see
    :mod:`.adapters`, :mod:`.dispatcher`), or None for none. Without a
    dispatcher every mode computes the complete block (masks are all ones).

    ``forward`` returns the new tokens and one ``(B, N_image)`` mask per site.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, fused_attn: bool = True,
                 norm_eps: float = 1e-6):
        super().__init__()
        check_choice('dispatch variant', variant, VARIANTS)
        self.variant = variant
        self.sites = VARIANT_SITES[variant]
        self.mode = 'masked'
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.dispatchers = nn.ModuleDict({} if dispatch is None else {
            site: build_dispatcher(dispatch, dim) for site in self.sites})
        # keyed by dispatch site (parallel adapters) or attach point ('qkv', 'prompts')
        self.adapters = nn.ModuleDict(build_adapters(adapter, dim, self.sites))

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        check_choice('execution mode', value, MODES)
        self._mode = value

    @property
    def num_prompts(self) -> int:
        prompts = self._adapter('prompts')
        return 0 if prompts is None else prompts.num_prompts

    def _adapter(self, key: str) -> Optional[nn.Module]:
        return self.adapters[key] if key in self.adapters else None

    # The three residual branches a site can dispatch: on (B, N, C) tokens with an optional
    # key mask, or (sparse mode, token-mixing sites) on the kept rows with their layout.
    def _attn_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                     kept: Optional[KeptTokens] = None):
        return self.attn(self.norm1(x), key_mask, kept, self._adapter('qkv'))

    def _mlp_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                    kept: Optional[KeptTokens] = None):
        return self.mlp(self.norm2(x))

    def _layer_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                      kept: Optional[KeptTokens] = None):
        attn = self.drop_path(self._attn_branch(x, key_mask, kept))
        return attn + self.drop_path(self._mlp_branch(x + attn))

    def _site(self, site: str, x: torch.Tensor,
              num_prefix: int) -> Tuple[torch.Tensor, torch.Tensor]:
        branch = getattr(self, f'_{site}_branch')
        adapter = self._adapter(site)
        residual = x if adapter is None else x + adapter(x)
        # _layer_branch applies stochastic depth to its two parts itself.
        drop_path = self.drop_path if site != 'layer' else nn.Identity()
        if self.mode == 'complete' or site not in self.dispatchers:
            mask = x.new_ones(x.shape[:2])
            return residual + drop_path(branch(x)), mask[:, num_prefix:]
        mask = self.dispatchers[site](x, num_prefix)
        token_mixing = site in TOKEN_MIXING_SITES
        if self.mode == 'masked':
            key_mask = mask.detach() if token_mixing else None
            out = residual + drop_path(branch(x, key_mask) * mask.unsqueeze(-1))
        else:
            # the sparse paths add into their output in place: never into the block's input
            out = residual if adapter is not None else x.clone()
            sparse = sparse_token_mixing if token_mixing else sparse_tokenwise
            out = sparse(branch, x, mask, out)
        return out, mask[:, num_prefix:]

    def forward(self, x: torch.Tensor, num_prefix: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Prompts (VPT-deep) join the prefix for this block only."""
        prompts = self._adapter('prompts')
        if prompts is None:
            return self._forward_sites(x, num_prefix)
        x, masks = self._forward_sites(prompts.insert(x, num_prefix),
                                       num_prefix + prompts.num_prompts)
        return prompts.remove(x, num_prefix), masks

    def _forward_sites(self, x: torch.Tensor,
                       num_prefix: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        masks = []
        if 'layer' in self.sites:
            x, mask = self._site('layer', x, num_prefix)
            return x, [mask]
        if 'attn' in self.sites:
            x, mask = self._site('attn', x, num_prefix)
            masks.append(mask)
        else:
            x = x + self.drop_path(self._attn_branch(x))
        if 'mlp' in self.sites:
            x, mask = self._site('mlp', x, num_prefix)
            masks.append(mask)
        else:
            x = x + self.drop_path(self._mlp_branch(x))
        return x, masks
