"""The plain ViT block with dispatched sites (see :mod:`.site`), assembled from :mod:`.layers`.

``variant`` chooses which residual branches are sites: the MLP, the
attention, both, or the whole layer. Adapters that attach elsewhere (LoRA on
the linear layers, VPT prompts) are held beside the sites; see :mod:`.adapters`.
"""
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .adapters import DEFAULT_ADAPTER, build_adapters
from .dispatcher import DEFAULT_DISPATCH, build_dispatcher
from .layers import (INNER_NORMS, Attention, DropPath, LayerScale, Mlp, build_mlp,
                     with_identity_prefix)
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
                 window_size: int = 0, rel_pos: Optional[Tuple[int, int]] = None):
        super().__init__()
        check_choice('dispatch variant', variant, VARIANTS)
        if window_size and variant != 'mlp':
            raise ValueError(f"window attention (window_size={window_size}) needs the 'mlp' "
                             f"dispatch variant, got {variant!r}: the sparse mode gathers the "
                             'kept tokens of a whole sample, not of a window')
        if rel_pos is not None and variant != 'mlp':
            raise ValueError(f"relative positions (rel_pos={tuple(rel_pos)}) need the 'mlp' "
                             f"dispatch variant, got {variant!r}: the sparse mode's kept tokens "
                             'of a sample are no grid')
        for where in inner_norms:
            check_choice('inner norm', where, INNER_NORMS)
        self.variant = variant
        self.sites = VARIANT_SITES[variant]
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn, 'attn' in inner_norms,
                              norm_eps, window_size, rel_pos)
        self.ls1 = nn.Identity() if layer_scale is None else LayerScale(dim, layer_scale)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = build_mlp(dim, int(dim * mlp_ratio), mlp_act, 'mlp' in inner_norms, norm_eps)
        self.ls2 = nn.Identity() if layer_scale is None else LayerScale(dim, layer_scale)
        self.drop_path = DropPath(drop_path)
        self.dispatchers = nn.ModuleDict({} if dispatch is None else {
            site: build_dispatcher(dispatch, dim) for site in self.sites})
        # keyed by dispatch site (parallel adapters) or attach point ('linears', 'prompts')
        self.adapters = nn.ModuleDict(build_adapters(adapter, dim, self.sites))
        lora = self._adapter('linears')
        if lora is not None:
            lora.fit({name: (layer.in_features, len(range(layer.out_features)[rows]))
                      for name, (layer, rows) in self.lora_layers().items()})

    @property
    def num_prompts(self) -> int:
        prompts = self._adapter('prompts')
        return 0 if prompts is None else prompts.num_prompts

    def _adapter(self, key: str) -> Optional[nn.Module]:
        return self.adapters[key] if key in self.adapters else None

    def lora_layers(self) -> Dict[str, Tuple[nn.Linear, slice]]:
        """The linear layers LoRA can target, by PEFT's names, and the rows of each weight
        that a target covers: q, k and v are thirds of the fused qkv projection. A
        gated MLP (SwiGLU) has no single ``fc1``."""
        dim = self.attn.proj.in_features
        qkv, whole = self.attn.qkv, slice(None)
        layers = {'q': (qkv, slice(0, dim)), 'k': (qkv, slice(dim, 2 * dim)),
                  'v': (qkv, slice(2 * dim, 3 * dim)), 'proj': (self.attn.proj, whole)}
        if isinstance(self.mlp, Mlp):
            layers['fc1'] = (self.mlp.fc1, whole)
        layers['fc2'] = (self.mlp.fc2, whole)
        return layers

    @torch.no_grad()
    def merge_lora(self) -> bool:
        """Fold the LoRA (if any) into the frozen weights and remove it; whether there was one."""
        if 'linears' not in self.adapters:
            return False
        self.adapters.pop('linears').merge(self.lora_layers())
        return True

    # The three residual branches a site can dispatch (see site.run_site). The token-mixing
    # ones (attention, the whole layer) take the masked mode's key mask or, in the sparse
    # modes, the kept rows' layout, and ``rope``, the rotary table of the whole sequence
    # (see Attention) or None; the MLP is token-wise.
    def _attn_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                     kept: Optional[KeptTokens] = None, *,
                     rope: Optional[torch.Tensor]) -> torch.Tensor:
        x, lora = self.norm1(x), self._adapter('linears')
        if kept is None:
            return self.ls1(self.attn(x, key_mask, lora, rope))
        return self.ls1(self.attn.forward_rows(x, kept, lora, rope))

    def _mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        # LoRA on fc1 / fc2 runs inside the branch: only on the tokens the MLP runs on
        return self.ls2(self.mlp(self.norm2(x), self._adapter('linears')))

    def _layer_branch(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
                      kept: Optional[KeptTokens] = None, *,
                      rope: Optional[torch.Tensor]) -> torch.Tensor:
        attn = self.drop_path(self._attn_branch(x, key_mask, kept, rope=rope))
        return attn + self.drop_path(self._mlp_branch(x + attn))

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
        """The undispatched attention (global or in windows), then (with ``merge``) token
        merging by its keys."""
        h, lora = self.norm1(x), self._adapter('linears')
        if merge is not None:
            attn, keys = self.attn.forward_with_keys(h, merge.attention_bias(num_prefix), lora)
            return merge_tokens(x + self.drop_path(self.ls1(attn)), keys, num_prefix, merge)
        if self.attn.window_size:
            attn = self.attn.forward_windows(h, grid, lora, rope)
        else:
            attn = self.attn(h, lora=lora, rope=rope, grid=grid)
        return x + self.drop_path(self.ls1(attn)), None

    def _forward_sites(self, x: torch.Tensor, num_prefix: int, rope: Optional[torch.Tensor],
                       merge: Optional[MergeState], grid: Optional[Tuple[int, int]]
                       ) -> Tuple[torch.Tensor, List[torch.Tensor], Optional[MergeState]]:
        if rope is not None:
            rope = with_identity_prefix(rope, num_prefix)
        if self.variant == 'layer':
            # the layer branch applies stochastic depth to its two parts itself
            x, mask = self.run_site('layer', partial(self._layer_branch, rope=rope), x,
                                    num_prefix, nn.Identity(), token_mixing=True)
            return x, [mask], merge
        masks = []
        if 'attn' in self.sites:
            x, mask = self.run_site('attn', partial(self._attn_branch, rope=rope), x,
                                    num_prefix, self.drop_path, token_mixing=True)
            masks.append(mask)
        else:
            x, merge = self._attend_and_merge(x, num_prefix, rope, merge, grid)
        if 'mlp' in self.sites:
            x, mask = self.run_site('mlp', self._mlp_branch, x, num_prefix, self.drop_path)
            masks.append(mask)
        else:
            x = x + self.drop_path(self._mlp_branch(x))
        return x, masks, merge
