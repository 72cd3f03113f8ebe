"""What every DyT network (the plain ViT, the Swin) shares with the tools around it.

Training, the FLOPs hook, calibration and the analysis tools find a model's
DyT network by this class and only use what it declares here, so a new
architecture plugs in by subclassing it: its ``forward`` returns a
:class:`~.vit.DyTOutput`, ``blocks`` lists its :class:`~.site.DispatchedBlock`
s in site order, and :meth:`flops_counter` counts it.
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

# Parameter-name fragments of what DyT adds to a pre-trained network.
DYT_PARAM_KEYS = ('.dispatchers.', '.adapters.')


class DyTNetwork(nn.Module):
    """Base of the DyT networks.

    Subclasses set ``blocks`` (every dispatched block, in order), ``variant``,
    ``depth`` (number of blocks), ``num_prefix``, ``patch_size``,
    ``in_channels``, ``img_size``, a ``patch_embed.proj`` convolution and
    ``check_input_size(height, width)``.
    """

    merge_r = 0  # image tokens merged per block (ToMe: the plain ViT only)

    @property
    def sites(self) -> Tuple[Tuple[int, str], ...]:
        """``(block index, site)`` for each mask that ``forward`` returns, in order."""
        return tuple((i, site) for i, block in enumerate(self.blocks) for site in block.sites)

    @property
    def site_labels(self) -> List[str]:
        """``l3`` per dispatched layer, ``l3.attn`` / ``l3.mlp`` with two sites per layer."""
        per_block = len(self.sites) // self.depth
        return [f'l{i}' if per_block == 1 else f'l{i}.{site}' for i, site in self.sites]

    def site_lengths(self) -> Optional[List[int]]:
        """Tokens each site's sequence holds (prefix included) at the native input size,
        or None where the network cannot tell."""
        return None

    def site_tokens(self, num_image_tokens: int) -> torch.Tensor:
        """``(S,)`` image tokens each dispatch site sees, on the masks' last dimension."""
        return torch.full((len(self.sites), ), num_image_tokens)

    @property
    def has_dispatch(self) -> bool:
        return any(len(block.dispatchers) for block in self.blocks)

    @property
    def mode(self) -> str:
        modes = {blk.mode for blk in self.blocks}
        return modes.pop() if len(modes) == 1 else 'mixed'

    def is_dyt_param(self, name: str) -> bool:
        return any(key in '.' + name for key in DYT_PARAM_KEYS)

    def freeze_base(self) -> None:
        for name, param in self.named_parameters():
            param.requires_grad = self.is_dyt_param(name)

    def patch_tokens(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(B, in_channels, H, W)`` images -> ``(B, N, C)`` patch tokens and their grid."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected input of shape (B, {self.in_channels}, H, W), '
                             f'got {tuple(x.shape)}')
        self.check_input_size(*x.shape[-2:])
        x = self.patch_embed.proj(x)
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:])

    def flops_counter(self, num_image_tokens: Optional[int] = None,
                      grid: Optional[Tuple[int, int]] = None):
        """The analytic FLOPs counter (``dense``, ``complete``, ``per_sample``,
        ``from_masks``) at ``num_image_tokens`` per image, i.e. at the last
        dimension of the masks (default: the native input size); ``grid``: the
        image-token grid of the input, where the count alone does not tell the
        cost (window attention)."""
        raise NotImplementedError


def dyt_network(model: nn.Module) -> DyTNetwork:
    """The one DyT network of ``model`` (or ``model`` itself)."""
    networks = [m for m in model.modules() if isinstance(m, DyTNetwork)]
    if len(networks) != 1:
        raise ValueError(f'{type(model).__name__} must hold exactly one DyT network (ViT, '
                         f'Swin), has {len(networks)}')
    return networks[0]
