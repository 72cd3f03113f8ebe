"""A minimal Swin Transformer with DyT on the MLP of every block (timm's names and layout).

Shifted-window attention with relative position bias, patch merging at the
start of stages 2-4, a final LayerNorm: what timm's ``swin_base_patch4_window7_224``
computes (its weights load by name), and nothing else. The MLP of each block
is a dispatched site run by :func:`~.site.run_site` (token-wise, no prefix
token), so the dispatcher, the adapter and the execution modes are the
ViT's; window attention sees every token.

A stage's tokens are coarser than the first stage's (4 x 4 patches of stage 1
per token in stage 3), so :class:`DyTSwin` returns each site's mask on the
finest grid (see :class:`~.network.DyTOutput`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .adapters import DEFAULT_ADAPTER, attach_point, build_adapters
from .dispatcher import DEFAULT_DISPATCH, build_dispatcher
from .flops import SwinFlops
from .layers import DropPath, Mlp, dot_product_attention
from .network import DyTNetwork, DyTOutput, StateDict, to_pair
from .registry import check_choice
from .site import DispatchedBlock
from .windows import WindowGather

# timm's shapes (``swin_<arch>_patch4_window7_224``).
SWIN_PRESETS = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


def resolve_swin_arch(arch: Union[str, dict]) -> dict:
    """A preset name, or a dict with embed_dims, depths, num_heads (one per stage)."""
    if isinstance(arch, str):
        check_choice('arch', arch, tuple(SWIN_PRESETS))
        return dict(SWIN_PRESETS[arch])
    keys = {'embed_dims', 'depths', 'num_heads'}
    if not isinstance(arch, dict) or set(arch) != keys:
        raise ValueError(f'arch must be one of {tuple(SWIN_PRESETS)} or a dict with exactly '
                         f'{sorted(keys)}, got {arch!r}')
    if len(arch['depths']) != len(arch['num_heads']):
        raise ValueError(f'arch needs one depth and one head count per stage, got depths '
                         f'{arch["depths"]} and num_heads {arch["num_heads"]}')
    return dict(arch)


def relative_position_index(window: Tuple[int, int]) -> torch.Tensor:
    """``(wh*ww, wh*ww)``: each query/key pair's row in the ``(2wh-1)(2ww-1)`` bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]),
                                        indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[..., 0] + window[0] - 1) * (2 * window[1] - 1) + rel[..., 1] + window[1] - 1


class WindowAttention(nn.Module):
    """Multi-head attention within windows, with a learned relative position bias (timm naming).

    ``fused_attn=False`` spells out the two matmuls, so that FLOP counters
    see them (see :func:`~.layers.dot_product_attention`).
    """

    def __init__(self, dim: int, num_heads: int, window: Tuple[int, int], qkv_bias: bool = True,
                 fused_attn: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'stage width {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1), num_heads))
        self.register_buffer('relative_position_index', relative_position_index(window),
                             persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        """``(heads, wh*ww, wh*ww)``."""
        index = self.relative_position_index
        return self.relative_position_bias_table[index.flatten()].reshape(
            *index.shape, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x``: ``(B * windows, N, C)``; ``mask``: ``(windows, N, N)`` or None."""
        Bw, N, C = x.shape
        q, k, v = self.qkv(x).reshape(Bw, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        bias = self.position_bias().unsqueeze(0)
        if mask is not None:
            # each window its own mask: windows join the heads, (B, windows * heads, N, .)
            # against one (1, windows * heads, N, N) bias; 4-D keeps sdpa's fast CPU kernel
            bias = (bias + mask[:, None]).reshape(1, -1, N, N)
            q, k, v = (t.reshape(Bw // mask.shape[0], -1, N, t.shape[-1]) for t in (q, k, v))
        x = dot_product_attention(q, k, v, bias, self.fused_attn)
        return self.proj(x.reshape(Bw, self.num_heads, N, -1).transpose(1, 2).reshape(Bw, N, C))


class SwinBlock(DispatchedBlock):
    """(Shifted) window attention, then the MLP as a DyT site (timm naming).

    ``window`` and ``shift`` are those of the pre-training grid: a stage
    whose grid fits in one window has that window and no shift (as timm).
    Other grids are padded to whole windows, and attention sees the zero
    padding as timm's Swin does (the layout's key mask is not applied).
    """

    sites = ('mlp', )

    def __init__(self, dim: int, num_heads: int, window: Tuple[int, int],
                 shift: Tuple[int, int], mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, fused_attn: bool = True):
        super().__init__()
        self.windows = WindowGather(window, shift)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.dispatchers = nn.ModuleDict(
            {} if dispatch is None else {'mlp': build_dispatcher(dispatch, dim)})
        self.adapters = nn.ModuleDict(build_adapters(adapter, dim, self.sites))
        attached = {attach_point(a) for a in self.adapters.values()} - {'parallel'}
        if attached:
            raise ValueError(f'the Swin blocks take parallel adapters (Adapter, MoEAdapter) '
                             f'only, got one attached at {sorted(attached)}')

    @property
    def window(self) -> Tuple[int, int]:
        return self.windows.window

    def window_attention(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Attention of ``(B, H*W, C)`` tokens within their (shifted) windows."""
        layout = self.windows.layout(grid, x)
        out = self.attn(self.windows.partition(x, layout), layout.region_mask)
        return self.windows.reverse(out, layout, x.shape[0])

    def _mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm2(x))

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, H*W, C)`` tokens of an ``H x W`` grid -> new tokens, ``(B, H*W)`` MLP mask."""
        x = x + self.drop_path(self.window_attention(self.norm1(x), grid))
        return self.run_site('mlp', self._mlp_branch, x, 0, self.drop_path)


class PatchMerging(nn.Module):
    """Each 2 x 2 group of tokens -> one token of ``out_dim`` (timm's channel order)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        B, _, C = x.shape
        H, W = grid
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5)
        return self.reduction(self.norm(x.reshape(B, H * W // 4, 4 * C)))


class SwinStage(nn.Module):
    """Optional patch merging, then blocks alternating plain and shifted windows."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, grid: Tuple[int, int],
                 window: int, downsample: bool, drop_path: Sequence[float], **block_options):
        super().__init__()
        self.downsample = PatchMerging(in_dim, dim) if downsample else None
        # a grid that fits in one window: that window, never shifted (as timm)
        window = tuple(min(g, window) for g in grid)
        shift = tuple(0 if g <= w else w // 2 for g, w in zip(grid, window))
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, shift if i % 2 else (0, 0), drop_path=drop_path[i],
                      **block_options) for i in range(depth))

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]
                ) -> Tuple[torch.Tensor, Tuple[int, int], List[torch.Tensor]]:
        if self.downsample is not None:
            x = self.downsample(x, grid)
            grid = (grid[0] // 2, grid[1] // 2)
        masks = []
        for block in self.blocks:
            x, mask = block(x, grid)
            masks.append(mask)
        return x, grid, masks


def on_finest_grid(mask: torch.Tensor, grid: Tuple[int, int], factor: int) -> torch.Tensor:
    """A ``(B, H*W)`` mask repeated over the ``factor x factor`` finest tokens each token covers."""
    B = mask.shape[0]
    H, W = grid
    mask = mask.reshape(B, H, 1, W, 1).expand(B, H, factor, W, factor)
    return mask.reshape(B, H * factor * W * factor)


class DyTSwin(DyTNetwork):
    """Swin Transformer with a DyT site on every block's MLP; timm's parameter names.

    Args:
        arch: preset (tiny/small/base/large) or ``dict(embed_dims, depths, num_heads)``.
        img_size: the pre-training resolution; it fixes each stage's window and
            shift (as in timm). Inputs must be multiples of ``patch_size x
            2^(stages - 1)`` (32 for Swin-B), so that patch merging never pads.
        window_size: attention window of the pre-training grid (7 for ``window7``).
        variant: what the dispatchers skip: ``mlp`` only (window attention
            sees every token; the paper's Table 17).
        adapter, dispatch, freeze_base: as :class:`~.vit.DyTViT` (parallel
            adapters only: the MLP is the one site).
        fused_attn: ``scaled_dot_product_attention``; False spells out the
            matmuls (for FLOP counters).
    """

    num_prefix = 0

    def __init__(self, arch: Union[str, dict] = 'base', img_size=224, patch_size: int = 4,
                 window_size: int = 7, in_channels: int = 3, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path_rate: float = 0.0, variant: str = 'mlp',
                 adapter: Optional[dict] = DEFAULT_ADAPTER,
                 dispatch: Optional[dict] = DEFAULT_DISPATCH, freeze_base: bool = True,
                 fused_attn: bool = True):
        super().__init__()
        check_choice('Swin dispatch variant', variant, SwinBlock.sites)
        self.variant = variant
        spec = resolve_swin_arch(arch)
        self.depths, self.num_heads = tuple(spec['depths']), tuple(spec['num_heads'])
        self.depth = sum(self.depths)
        self.num_stages = len(self.depths)
        self.stage_dims = tuple(spec['embed_dims'] * 2**i for i in range(self.num_stages))
        self.embed_dims = self.stage_dims[-1]  # the width of the output tokens
        self.mlp_ratio = mlp_ratio
        self.patch_size, self.in_channels, self.window_size = patch_size, in_channels, window_size
        self.img_size = to_pair(img_size)
        self.check_input_size(*self.img_size)
        self.grid_size = tuple(s // patch_size for s in self.img_size)

        C = self.stage_dims[0]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, C, patch_size, patch_size)
        self.patch_embed.norm = nn.LayerNorm(C)
        dpr = torch.linspace(0, drop_path_rate, self.depth).split(self.depths)
        block_options = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, adapter=adapter,
                             dispatch=dispatch, fused_attn=fused_attn)
        self.layers = nn.ModuleList(
            SwinStage(self.stage_dims[max(i - 1, 0)], self.stage_dims[i], self.depths[i],
                      self.num_heads[i], self.stage_grid(self.grid_size, i), window_size,
                      i > 0, dpr[i].tolist(), **block_options)
            for i in range(self.num_stages))
        self.norm = nn.LayerNorm(self.embed_dims)
        self._init_base_weights()
        if freeze_base:
            self.freeze_base()

    @property
    def blocks(self) -> List[SwinBlock]:
        return [block for stage in self.layers for block in stage.blocks]

    def site_lengths(self) -> List[int]:
        return [h * w for i, stage in enumerate(self.layers)
                for h, w in [self.stage_grid(self.grid_size, i)] * len(stage.blocks)]

    @staticmethod
    def stage_grid(grid: Tuple[int, int], stage: int) -> Tuple[int, int]:
        return (grid[0] >> stage, grid[1] >> stage)

    def _init_base_weights(self) -> None:
        for name, param in self.named_parameters():
            if name.endswith('relative_position_bias_table'):
                nn.init.trunc_normal_(param, std=0.02)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and not self.is_dyt_param(name):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def check_input_size(self, height: int, width: int) -> None:
        unit = self.patch_size * 2**(self.num_stages - 1)
        if height % unit or width % unit:
            raise ValueError(f'input size {height}x{width} does not fit this Swin: it needs '
                             f'multiples of {unit} (patch {self.patch_size} x '
                             f'{2**(self.num_stages - 1)} for the patch merges)')

    def flops_counter(self, num_image_tokens: Optional[int] = None,
                      grid: Optional[Tuple[int, int]] = None) -> SwinFlops:
        # ``grid`` (a ViT's image-token grid) does not apply: masks are on the finest grid
        return SwinFlops(self, None if num_image_tokens is None else self.grid_of(num_image_tokens))

    def grid_of(self, num_image_tokens: int) -> Tuple[int, int]:
        """The finest grid of ``num_image_tokens`` tokens, of the native input's aspect."""
        h, w = self.grid_size
        scale = (num_image_tokens / (h * w))**0.5
        grid = (round(h * scale), round(w * scale))
        if grid[0] * grid[1] != num_image_tokens:
            raise ValueError(f'{num_image_tokens} tokens are no grid of the aspect {h}:{w} of '
                             f'this Swin\'s {self.img_size[0]}x{self.img_size[1]} input')
        return grid

    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x, grid = self.patch_tokens(x)
        return self.patch_embed.norm(x), grid

    def pool(self, tokens: torch.Tensor, how: str = 'avg_featmap') -> torch.Tensor:
        """Mean of the output tokens (timm's global average pooling; Swin has no class token)."""
        check_choice('Swin out_type', how, ('avg_featmap', ))
        return tokens.mean(dim=1)

    def forward(self, x: torch.Tensor) -> DyTOutput:
        x, grid = self.embed(x)
        masks = []
        for i, stage in enumerate(self.layers):
            x, grid, stage_masks = stage(x, grid)
            masks.extend(on_finest_grid(m, grid, 2**i) for m in stage_masks)
        return DyTOutput(self.norm(x), torch.stack(masks, dim=1), ())

    def merge_adapters(self) -> int:
        """Nothing to merge: a Swin block takes parallel adapters only (checked when it is
        built), which add a branch instead of changing a weight. Returns 0."""
        return 0

    def checkpoint_filter(self, state: StateDict) -> StateDict:
        """Swin tensors in timm's layout fit as they are: the relative position bias tables
        are per window, whose size is the checkpoint's (``window_size``), at any input
        size."""
        return dict(state)

    def describe(self) -> str:
        return (f'DyT Swin (embed_dims={self.stage_dims[0]}, depths={self.depths}, '
                f'num_heads={self.num_heads}, patch={self.patch_size}, '
                f'window={self.window_size} at {self.img_size[0]}x{self.img_size[1]})')

    def weight_options(self) -> dict:
        # every option a Swin checkpoint depends on shows in its names or shapes
        return {}
