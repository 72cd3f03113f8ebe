"""One window layout for window attention: ViTDet's windows and Swin's (shifted) windows.

The tokens of an ``H x W`` grid go into windows by one gather, and back by
another: what timm's roll, pad, partition and their inverses do, each a copy
of the batch. The grid is padded at the bottom and right to whole windows;
the padding slots read a zero row, and the layout's ``key_mask`` tells which
slots hold a real token. ViTDet masks the padded keys out; Swin, as timm's
and as it was trained, attends to them (see :class:`~.swin.SwinBlock`).
"""
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

# Swin's masking value for keys outside a shifted window's own region (timm's)
_OTHER_REGION = -100.0


def window_partition(x: torch.Tensor, window: Tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * windows, wh * ww, C)``, windows in row-major order."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // window[0], window[0], W // window[1], window[1], C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window[0] * window[1], C)


def shifted_window_mask(grid: Tuple[int, int], window: Tuple[int, int],
                        shift: Tuple[int, int]) -> torch.Tensor:
    """``(windows, wh*ww, wh*ww)`` additive mask of a shifted partition of the (padded)
    ``grid``: a window that wraps around keeps its regions from attending to each other."""
    regions = torch.zeros(1, *grid, 1)
    region = 0
    for rows in ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None)):
        for cols in ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None)):
            regions[:, rows[0]:rows[1], cols[0]:cols[1]] = region
            region += 1
    regions = window_partition(regions, window).squeeze(-1)
    differ = regions[:, None, :] != regions[:, :, None]
    return torch.zeros(differ.shape).masked_fill(differ, _OTHER_REGION)


class WindowLayout(NamedTuple):
    """Where the tokens of an ``H x W`` grid go in a (shifted, padded) window partition."""
    order: torch.Tensor  # (windows * area,) the token of each window slot; H*W for padding
    slot: torch.Tensor  # (H*W,) the slot of each token
    key_mask: Optional[torch.Tensor]  # (windows, area): 0 at padding; None without padding
    region_mask: Optional[torch.Tensor]  # (windows, area, area) mask of a shifted partition


def window_layout(grid: Tuple[int, int], window: Tuple[int, int],
                  shift: Tuple[int, int] = (0, 0)) -> WindowLayout:
    """timm's partition as one gather: cyclic shift by ``-shift``, zero padding at the
    bottom and right to whole windows, windows in row-major order."""
    H, W = grid
    padded = (-(-H // window[0]) * window[0], -(-W // window[1]) * window[1])
    tokens = torch.arange(H * W).reshape(H, W).roll((-shift[0], -shift[1]), dims=(0, 1))
    tokens = F.pad(tokens, (0, padded[1] - W, 0, padded[0] - H), value=H * W)
    order = window_partition(tokens[None, :, :, None], window).flatten()
    # the padding slots (value H*W) sort last
    slot = order.argsort(stable=True)[:H * W]
    key_mask = None
    if padded != tuple(grid):
        key_mask = (order < H * W).float().reshape(-1, window[0] * window[1])
    region_mask = shifted_window_mask(padded, window, shift) if any(shift) else None
    return WindowLayout(order, slot, key_mask, region_mask)


class WindowGather:
    """Tokens ``(B, H*W, C)`` of a grid into ``(B * windows, area, C)`` windows and back.

    The layouts of the last ``MAX_LAYOUTS`` grids (per device and dtype) are
    kept: a detector sees many input sizes. Traced (``torch.export``,
    ``torch.compile``), a layout kept from an eager call is a constant of the
    graph, and one made while tracing is not kept.
    """
    MAX_LAYOUTS = 16

    def __init__(self, window: Tuple[int, int], shift: Tuple[int, int] = (0, 0)):
        self.window, self.shift = tuple(window), tuple(shift)
        self._layouts: Dict[tuple, WindowLayout] = {}

    def layout(self, grid: Tuple[int, int], like: torch.Tensor) -> WindowLayout:
        """The layout of ``grid``, its indices on ``like``'s device, its masks in its dtype."""
        key = (tuple(grid), like.device, like.dtype)
        if key in self._layouts:
            return self._layouts[key]
        layout = window_layout(grid, self.window, self.shift)
        masks = [None if m is None else m.to(like) for m in (layout.key_mask, layout.region_mask)]
        layout = WindowLayout(layout.order.to(like.device), layout.slot.to(like.device), *masks)
        if not torch.compiler.is_compiling():
            if len(self._layouts) == self.MAX_LAYOUTS:
                del self._layouts[next(iter(self._layouts))]  # the oldest
            self._layouts[key] = layout
        return layout

    def partition(self, x: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
        B, _, C = x.shape
        if layout.key_mask is not None:  # padding slots read a zero row
            x = torch.cat([x, x.new_zeros(B, 1, C)], dim=1)
        return x.index_select(1, layout.order).reshape(-1, self.window[0] * self.window[1], C)

    def reverse(self, windows: torch.Tensor, layout: WindowLayout, batch: int) -> torch.Tensor:
        """``(B * windows, area, C)`` -> ``(B, H*W, C)``, the padding slots dropped."""
        return windows.reshape(batch, -1, windows.shape[-1]).index_select(1, layout.slot)
