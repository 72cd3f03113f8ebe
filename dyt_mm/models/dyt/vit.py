"""The one DyT Vision Transformer shared by classification, segmentation and video."""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import DEFAULT_ADAPTER
from .block import DyTBlock
from .dispatcher import DEFAULT_DISPATCH
from .flops import ViTFlops
from .layers import resize_rel_pos
from .merging import check_merge_r, initial_state, merge_schedule, parse_merge
from .network import DyTNetwork, DyTOutput, StateDict, to_pair
from .registry import check_choice

# timm's shapes. Patch size is a separate argument (huge uses 14 in timm).
ARCH_PRESETS = {
    'tiny': dict(embed_dims=192, depth=12, num_heads=3),
    'small': dict(embed_dims=384, depth=12, num_heads=6),
    'base': dict(embed_dims=768, depth=12, num_heads=12),
    'large': dict(embed_dims=1024, depth=24, num_heads=16),
    'huge': dict(embed_dims=1280, depth=32, num_heads=16),
}


def resolve_arch(arch: Union[str, dict]) -> dict:
    """An arch preset name, or a dict with embed_dims, depth, num_heads (+ mlp_ratio)."""
    if isinstance(arch, str):
        check_choice('arch', arch, tuple(ARCH_PRESETS))
        return dict(ARCH_PRESETS[arch], mlp_ratio=4.0)
    if isinstance(arch, dict):
        missing = {'embed_dims', 'depth', 'num_heads'} - set(arch)
        unknown = set(arch) - {'embed_dims', 'depth', 'num_heads', 'mlp_ratio'}
        if missing or unknown:
            raise ValueError(f'arch dict needs embed_dims, depth, num_heads (and optional '
                             f'mlp_ratio); missing {sorted(missing)}, unknown {sorted(unknown)}')
        return dict(dict(mlp_ratio=4.0), **arch)
    raise ValueError(f'arch must be one of {tuple(ARCH_PRESETS)} or a dict, got {arch!r}')


def rotary_table(grid: Sequence[int], head_dim: int, ref_grid: Sequence[int],
                 temperature: float = 10000.0, device=None) -> torch.Tensor:
    """EVA-02's 2-D rotary embedding of an ``H x W`` grid: ``(H*W, 2 * head_dim)``, sin then cos.

    A quarter of the head's channels per axis and sin/cos pair; frequencies
    ``temperature^(-i / (head_dim/4))``; positions are patch indices rescaled
    to the pre-training grid ``ref_grid`` (so a finer grid keeps the angles).
    Each angle is repeated for the two channels of a rotated pair.
    """
    num_bands = head_dim // 4
    arange = partial(torch.arange, dtype=torch.float32, device=device)
    bands = temperature**-(arange(num_bands) / num_bands)
    axes = [arange(n) / n * ref for n, ref in zip(grid, ref_grid)]
    coords = torch.stack(torch.meshgrid(axes, indexing='ij'), dim=-1)  # (H, W, 2)
    angles = (coords[..., None] * bands).flatten(-2).flatten(0, 1)  # (H*W, 2 * num_bands)
    angles = angles.repeat_interleave(2, dim=-1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def resize_pos_embed(pos_embed: torch.Tensor, src_grid: Sequence[int], dst_grid: Sequence[int],
                     num_prefix: int) -> torch.Tensor:
    """Bicubic resize of the grid part of ``(1, prefix + H*W, C)`` position embeddings.

    A smaller grid (DINOv2's 37 x 37 of 518 px at 224 px) is antialiased, as
    timm does when it loads such checkpoints.
    """
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    C = grid.shape[-1]
    grid = grid.reshape(1, *src_grid, C).permute(0, 3, 1, 2)
    shrink = any(d < s for d, s in zip(dst_grid, src_grid))
    grid = F.interpolate(grid.float(), size=tuple(dst_grid), mode='bicubic', align_corners=False,
                         antialias=shrink)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, C).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


class DyTViT(DyTNetwork):
    """ViT with DyT blocks; parameter names follow timm's ViT for the base.

    Args:
        arch: preset name (tiny/small/base/large/huge) or a dict of explicit dims.
        img_size: the pre-training resolution; it fixes the position-embedding
            grid. Other input sizes are served by bicubic interpolation.
        variant: what the dispatchers skip: mlp, attn, attn_mlp or layer.
        adapter: config of a registered adapter, ``dict(type='Adapter' |
            'MoEAdapter' | 'LoRA' | 'VPTPrompts' | your own, **kwargs)``, or
            None for none (full tuning, linear probe, Dynamic-Full).
        dispatch: config of a registered dispatcher, ``dict(type=
            'TokenDispatcher' | 'SampleDispatcher' | 'RandomDispatcher',
            **kwargs)``, or None: nothing is skipped in any mode (AdaptFormer,
            LoRA, VPT, full tuning, linear probe).
        freeze_base: freeze every pre-trained parameter; only the dispatchers
            and adapters (incl. MoE routers, LoRA, prompts) train. False trains
            everything (full tuning, Dynamic-Full).
        out_indices: blocks whose raw outputs are returned as hidden states.
        fused_attn: use ``scaled_dot_product_attention``; False spells out the
            matmuls (for FLOP counters).

    What the pre-trained families differ in (timm's names in brackets; see
    :func:`~.families.infer_vit_config`, which reads them off a checkpoint).

    Family options:
        num_reg_tokens: DINOv2's register tokens [reg_tokens], after the class
            token; like every prefix token they are never dispatched.
        dist_token: DeiT's distillation token, after the class token.
        no_embed_class: the position embeddings cover the image tokens only
            (DINOv2 with registers) [no_embed_class].
        pre_norm: LayerNorm before the blocks, patch embedding without bias
            (CLIP) [pre_norm].
        mlp_act: gelu, quick_gelu (OpenAI CLIP) or swiglu (EVA-02).
        layer_scale: initial LayerScale value (DINOv2: 1e-5), None for none
            [init_values].
        inner_norms: where EVA-02 adds LayerNorms: ``'attn'`` (before the
            output projection) [scale_attn_inner], ``'mlp'`` (before fc2)
            [scale_mlp]; CLIP EVA-02-B/16 has both, the MIM ones only mlp.
        rope_ref_grid: EVA-02's 2-D rotary position embedding in attention,
            with positions scaled to this pre-training grid [ref_feat_shape];
            None for no RoPE.
        merge: ``dict(r=R)``: token merging (ToMe) of R image tokens per block,
            between attention and the MLP (see :mod:`.merging`); None for
            none. Needs ``variant='mlp'`` and no RoPE. ``merge_r`` can be
            changed on a built model (0 turns merging off).
        fc_norm: normalise the pooled image tokens instead of the tokens
            (MAE fine-tuned with global average pooling) [fc_norm]: the final
            norm is then absent and :meth:`pool` applies ``fc_norm``.

    ViTDet's layout, for detection at high resolution.

    ViTDet options:
        window_size: attention within ``window_size x window_size`` windows of
            the image grid in every block but the ``global_blocks`` (0: global
            attention everywhere). Needs a ViT without prefix tokens
            (``class_token=False``) and the ``mlp`` dispatch variant.
        global_blocks: indices of the blocks that keep global attention.
        pretrain_img_size: keep the position embeddings on this (pre-training)
            resolution's grid and resize them to the input's grid in every
            forward [pretrain_img_size], so that full tuning trains ViTDet's
            14 x 14 table, not a 64 x 64 one; None: they live on ``img_size``'s
            grid. A frozen ViT computes the same either way.
        rel_pos: ViTDet's decomposed relative position biases in every block
            [use_rel_pos]: tables ``rel_pos_h``, ``rel_pos_w`` of
            ``2 * size - 1`` rows per axis, for the block's window or, in a
            global block, the grid of ``img_size``. They are zero at first (the
            pre-trained ViT computes what it did) and train with the adapters
            unless a checkpoint holds them; tables of another window or grid
            are resized linearly on load, as ViTDet does, and a global block
            resizes its tables to other input grids. Needs no prefix tokens,
            the ``mlp`` variant, no token merging and no RoPE.
    """

    def __init__(self, arch: Union[str, dict] = 'base', img_size=224, patch_size: int = 16,
                 in_channels: int = 3, qkv_bias: bool = True, drop_path_rate: float = 0.0,
                 class_token: bool = True, final_norm: bool = True, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, freeze_base: bool = True, out_indices: Sequence[int] = (),
                 fused_attn: bool = True, norm_eps: float = 1e-6, num_reg_tokens: int = 0,
                 dist_token: bool = False, no_embed_class: bool = False, pre_norm: bool = False,
                 mlp_act: str = 'gelu', layer_scale: Optional[float] = None,
                 inner_norms: Sequence[str] = (), rope_ref_grid: Optional[Sequence[int]] = None,
                 fc_norm: bool = False, merge: Optional[dict] = None, window_size: int = 0,
                 global_blocks: Sequence[int] = (), rel_pos: bool = False,
                 pretrain_img_size: Optional[Union[int, Sequence[int]]] = None):
        super().__init__()
        spec = resolve_arch(arch)
        self.embed_dims, self.depth = spec['embed_dims'], spec['depth']
        self.num_heads, self.mlp_ratio = spec['num_heads'], spec['mlp_ratio']
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.img_size = to_pair(img_size)
        self.check_input_size(*self.img_size)
        self.grid_size = tuple(s // patch_size for s in self.img_size)
        # the grid the position embeddings are stored on
        self.pos_grid = self.grid_size
        if pretrain_img_size is not None:
            pretrain_img_size = to_pair(pretrain_img_size)
            if any(s % patch_size for s in pretrain_img_size):
                raise ValueError(f'pretrain_img_size {pretrain_img_size} is not divisible by '
                                 f'the patch size {patch_size}; use multiples of {patch_size}')
            self.pos_grid = tuple(s // patch_size for s in pretrain_img_size)
        if num_reg_tokens < 0:
            raise ValueError(f'num_reg_tokens must be >= 0, got {num_reg_tokens!r}')
        self.num_prefix = int(class_token) + int(dist_token) + num_reg_tokens
        # prefix tokens that have a position embedding
        self.num_pos_prefix = 0 if no_embed_class else self.num_prefix
        self.variant = variant
        self.mlp_act, self.norm_eps = mlp_act, norm_eps
        self.rope_ref_grid = None if rope_ref_grid is None else to_pair(rope_ref_grid)
        self.window_size = window_size
        self.rel_pos = rel_pos
        self.merge_r = parse_merge(merge)
        self.out_indices = tuple(i % self.depth for i in out_indices)
        if window_size and self.num_prefix:
            raise ValueError(f'window attention (window_size={window_size}) needs a ViT without '
                             f'prefix tokens (class_token=False, no register or distillation '
                             f'token), got {self.num_prefix} prefix token(s)')
        if rel_pos and (self.num_prefix or self.rope_ref_grid is not None):
            raise ValueError('relative positions (rel_pos=True) need a ViT without prefix tokens '
                             '(class_token=False, no register or distillation token) and '
                             f'without RoPE, got {self.num_prefix} prefix token(s) and '
                             f'rope_ref_grid={self.rope_ref_grid}')
        global_blocks = {i % self.depth for i in global_blocks}
        windows = [0 if i in global_blocks else window_size for i in range(self.depth)]

        C = self.embed_dims
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, C, patch_size, patch_size, bias=not pre_norm)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C)) if class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, C)) if dist_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, num_reg_tokens, C)) if num_reg_tokens else None
        num_pos = self.num_pos_prefix + self.pos_grid[0] * self.pos_grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_pos, C))
        self.norm_pre = nn.LayerNorm(C, eps=norm_eps) if pre_norm else nn.Identity()
        dpr = torch.linspace(0, drop_path_rate, self.depth).tolist()
        self.blocks = nn.ModuleList(
            DyTBlock(C, self.num_heads, self.mlp_ratio, qkv_bias, dpr[i], variant, adapter,
                     dispatch, fused_attn, norm_eps, mlp_act, layer_scale, inner_norms,
                     windows[i], self._rel_pos_size(windows[i]) if rel_pos else None)
            for i in range(self.depth))
        self.norm = nn.LayerNorm(C, eps=norm_eps) if final_norm and not fc_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(C, eps=norm_eps) if fc_norm else nn.Identity()
        self._init_base_weights()
        if freeze_base:
            self.freeze_base()

    def _rel_pos_size(self, window: int) -> Tuple[int, int]:
        """What a block's relative-position tables are made for: its window, or the grid."""
        return (window, window) if window else self.grid_size

    @property
    def merge_r(self) -> int:
        """Image tokens merged per block (ToMe); 0: no merging."""
        return self._merge_r

    @merge_r.setter
    def merge_r(self, r: int) -> None:
        r = check_merge_r(r)
        if r and self.variant != 'mlp':
            raise ValueError(f"token merging (merge r={r}) needs variant='mlp': attention must "
                             f"see every token to match them, got variant={self.variant!r}")
        if r and self.rope_ref_grid is not None:
            raise ValueError(f'token merging (merge r={r}) does not work with rotary position '
                             'embeddings (rope_ref_grid): a merged token has no one position')
        if r and self.window_size:
            raise ValueError(f'token merging (merge r={r}) does not work with window attention '
                             f'(window_size={self.window_size}): merged tokens leave the grid')
        if r and self.rel_pos:
            raise ValueError(f'token merging (merge r={r}) does not work with relative '
                             'positions (rel_pos=True): merged tokens leave the grid')
        self._merge_r = r

    def site_lengths(self) -> List[int]:
        image_tokens = self.site_tokens(self.grid_size[0] * self.grid_size[1]).tolist()
        return [self.num_prefix + self.blocks[i].num_prompts + n
                for (i, _), n in zip(self.sites, image_tokens)]

    def site_tokens(self, num_image_tokens: int) -> torch.Tensor:
        """``(S,)`` image tokens each dispatch site sees (fewer with token merging)."""
        if not self.merge_r:
            return super().site_tokens(num_image_tokens)
        # merging needs variant 'mlp': one site per block, after the block's merge
        return torch.tensor([mlp for _, mlp in merge_schedule(num_image_tokens, self.merge_r,
                                                              self.depth)])

    def _init_base_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for token in (self.cls_token, self.dist_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and not self.is_dyt_param(name):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def flops_counter(self, num_image_tokens: Optional[int] = None,
                      grid: Optional[Tuple[int, int]] = None) -> ViTFlops:
        # Only window attention needs the grid's shape; otherwise the token count is enough.
        if grid is None and num_image_tokens is not None:
            grid = (num_image_tokens, 1)
        return ViTFlops(self, grid=grid)

    def check_input_size(self, height: int, width: int) -> None:
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f'input size {height}x{width} is not divisible by the patch size '
                             f'{p}; use sizes that are multiples of {p} (or pad the input)')

    def pos_embed_for(self, grid: Tuple[int, int]) -> torch.Tensor:
        return resize_pos_embed(self.pos_embed, self.pos_grid, grid, self.num_pos_prefix)

    def rope_for(self, grid: Tuple[int, int]) -> Optional[torch.Tensor]:
        """The rotary table of the image tokens of ``grid`` (None without RoPE)."""
        if self.rope_ref_grid is None:
            return None
        return rotary_table(grid, self.embed_dims // self.num_heads, self.rope_ref_grid,
                            device=self.pos_embed.device)

    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch + prefix tokens + position embedding -> ``(B, N, C)`` and the grid.

        Prefix order as in timm: class, distillation, register tokens.
        """
        x, grid = self.patch_tokens(x)
        pos_embed = self.pos_embed_for(grid)
        prefix = [t.expand(x.shape[0], -1, -1)
                  for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]
        if self.num_pos_prefix:  # the position embeddings include the prefix tokens'
            x = torch.cat(prefix + [x], dim=1) + pos_embed
        else:
            x = torch.cat(prefix + [x + pos_embed], dim=1)
        return self.norm_pre(x), grid

    def pool(self, tokens: torch.Tensor, how: str = 'cls_token') -> torch.Tensor:
        """``cls_token`` or ``avg_featmap`` (mean of the image tokens), then ``fc_norm``."""
        check_choice('ViT pooling', how, ('cls_token', 'avg_featmap'))
        if how == 'cls_token':
            if self.cls_token is None:
                raise ValueError("pooling 'cls_token' needs a class token; this ViT was built "
                                 "with class_token=False: pool with 'avg_featmap'")
            pooled = tokens[:, 0]
        else:
            pooled = tokens[:, self.num_prefix:].mean(dim=1)
        return self.fc_norm(pooled)

    def forward(self, x: torch.Tensor) -> DyTOutput:
        x, grid = self.embed(x)
        rope = self.rope_for(grid)
        masks, hidden, sources = [], [], []
        merge = initial_state(x, self.num_prefix, self.merge_r) if self.merge_r else None
        num_image_tokens = x.shape[1] - self.num_prefix
        for i, block in enumerate(self.blocks):
            x, block_masks, merge = block(x, self.num_prefix, rope, merge, grid)
            if merge is not None:
                # merged sites see fewer tokens: pad their masks to one shape
                block_masks = [F.pad(m, (0, num_image_tokens - m.shape[-1])) for m in block_masks]
                sources.extend(merge.sources for _ in block_masks)
            masks.extend(block_masks)
            if i in self.out_indices:
                hidden.append(x)
        return DyTOutput(self.norm(x), torch.stack(masks, dim=1), tuple(hidden),
                         sources=torch.stack(sources, dim=1) if sources else None, grid=grid)

    @torch.no_grad()
    def merge_adapters(self) -> int:
        """Fold every LoRA into the frozen weights of the layers it targets and remove it.

        The merged model computes the same function as an ordinary ViT (up to
        rounding). Returns the number of adapters (one per block) merged.
        """
        return sum(block.merge_lora() for block in self.blocks)

    def checkpoint_filter(self, state: StateDict) -> StateDict:
        """Pre-trained ViT tensors fitted to this ViT: a class token it was built without
        dropped (ViTDet), position embeddings resized to its grid, relative-position tables
        resized to its windows and grid, the final norm or ``fc_norm`` it does not have
        dropped."""
        state = self._fit_pos_embed(self._drop_class_token(state))
        state = self._fit_rel_pos(state)
        # A ViT built without the final norm (dense features are raw block outputs) has no use
        # for the checkpoint's; one that pools without fc_norm none for the pooled tokens' norm.
        unused = tuple(name for name in ('norm.', 'fc_norm.')
                       if not isinstance(getattr(self, name[:-1]), nn.LayerNorm))
        return {k: v for k, v in state.items() if not k.startswith(unused)}

    def _drop_class_token(self, state: StateDict) -> StateDict:
        """A ViT built without a class token drops the checkpoint's, with its position
        embedding (the first one of a grid plus one; ViTDet keeps that one without the
        token)."""
        if self.cls_token is not None:
            return state
        state = {k: v for k, v in state.items() if k != 'cls_token'}
        pos = state.get('pos_embed')
        if pos is not None and int(round((pos.shape[1] - 1)**0.5))**2 == pos.shape[1] - 1:
            state['pos_embed'] = pos[:, 1:]
        return state

    def _fit_rel_pos(self, state: StateDict) -> StateDict:
        """Relative-position tables resized (linearly, as ViTDet) to this ViT's windows and
        grid; a checkpoint that holds tables needs a ViT built with them."""
        tables = [k for k in state if k.endswith(('attn.rel_pos_h', 'attn.rel_pos_w'))]
        if tables and not self.rel_pos:
            raise ValueError(f'the checkpoint holds ViTDet\'s relative position tables '
                             f'({tables[0]!r}, ...), which this ViT was built without: build '
                             'it with rel_pos=True')
        own = self.state_dict()
        fitted = {k: resize_rel_pos(state[k], own[k].shape[0])
                  for k in tables if k in own and state[k].shape[1:] == own[k].shape[1:]}
        return dict(state, **fitted)

    def _fit_pos_embed(self, state: StateDict) -> StateDict:
        """Resize ``pos_embed`` (square source grid) to the grid this ViT stores, bicubic."""
        pos = state.get('pos_embed')
        if pos is None or pos.shape == self.pos_embed.shape:
            return state
        num_grid = pos.shape[1] - self.num_pos_prefix
        side = int(round(num_grid**0.5))
        if side * side != num_grid:
            return state  # not a square grid: reported as a shape mismatch
        return dict(state, pos_embed=resize_pos_embed(pos, (side, side), self.pos_grid,
                                                      self.num_pos_prefix))

    def describe(self) -> str:
        return (f'DyT ViT (arch embed_dims={self.embed_dims}, depth={self.depth}, '
                f'patch={self.patch_size})')

    def weight_options(self) -> dict:
        return dict(mlp_act=self.mlp_act, norm_eps=self.norm_eps,
                    rope_ref_grid=self.rope_ref_grid)
