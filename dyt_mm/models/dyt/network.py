"""What every DyT network (the plain ViT, the Swin) promises the tools around it.

Training, the FLOPs hook, calibration, weight loading and the analysis tools
find a model's DyT network by this class and only use what it declares here,
so a new architecture plugs in by subclassing it and supplying every abstract
member: its ``forward`` returns a :class:`DyTOutput`, ``blocks`` lists its
:class:`~.site.DispatchedBlock` s in site order, :meth:`flops_counter` counts
it, :meth:`checkpoint_filter` fits pre-trained weights to it. This module
imports no network: the loader (:mod:`.pretrained`) sits above all of them.
"""
from abc import ABC, abstractmethod
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import nn

# Parameter-name fragments of what DyT adds to a pre-trained network, and of the relative
# position tables that ViTDet adds to an ImageNet ViT: new parameters that train (a checkpoint
# that holds the tables, ViTDet's or SAM's, gives their first values).
DYT_PARAM_KEYS = ('.dispatchers.', '.adapters.', '.rel_pos_h', '.rel_pos_w')
StateDict = Dict[str, torch.Tensor]


class DyTOutput(NamedTuple):
    tokens: torch.Tensor  # (B, N, C) after the final norm
    # (B, S, N_image): one 0/1 mask per dispatch site, in order. A hierarchical network (Swin)
    # gives every site's mask on its finest token grid: a coarser token's decision is repeated
    # over the finest tokens it covers, so each site's mean is its keep rate. With token
    # merging a site sees fewer tokens (DyTNetwork.site_tokens): its mask is zero-padded after
    # them.
    masks: torch.Tensor
    hidden_states: Tuple[torch.Tensor, ...]  # raw block outputs at ``out_indices``
    # With token merging, (B, S, N_image): for each site and original patch, the index of the
    # site's image token that holds the patch (masks.gather(-1, sources): masks per patch).
    sources: Optional[torch.Tensor] = None
    grid: Optional[Tuple[int, int]] = None  # the image-token grid (H/p, W/p) of this input


def to_pair(value) -> Tuple[int, int]:
    """``224`` -> ``(224, 224)``; a pair stays a pair (image sizes, grids)."""
    return (value, value) if isinstance(value, int) else tuple(value)


class DyTNetwork(nn.Module, ABC):
    """Base of the DyT networks.

    Subclasses set ``blocks`` (every dispatched block, in order), ``variant``,
    ``depth`` (number of blocks), ``num_prefix``, ``patch_size``,
    ``in_channels``, ``img_size``, ``embed_dims`` (width of the output tokens)
    and a ``patch_embed.proj`` convolution, and supply the abstract members.
    """

    merge_r = 0  # image tokens merged per block (ToMe: the plain ViT only)

    # ------------------------------------------------------------ what each network supplies
    @abstractmethod
    def check_input_size(self, height: int, width: int) -> None:
        """Raise ValueError naming the size if this network cannot take ``height x width``."""

    @abstractmethod
    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(B, in_channels, H, W)`` images -> the first block's ``(B, N, C)`` tokens (prefix
        tokens first) and the image-token grid."""

    @abstractmethod
    def pool(self, tokens: torch.Tensor, how: str) -> torch.Tensor:
        """``(B, N, C)`` output tokens -> ``(B, C)`` image features; ``how`` names the pooling
        (``cls_token``, ``avg_featmap``); one the network cannot do is a ValueError."""

    @abstractmethod
    def merge_adapters(self) -> int:
        """Fold every adapter that can be folded into the frozen weights (LoRA), so that the
        network computes the same with fewer operations; returns how many were merged."""

    @abstractmethod
    def flops_counter(self, num_image_tokens: Optional[int] = None,
                      grid: Optional[Tuple[int, int]] = None):
        """The analytic FLOPs counter (``dense``, ``complete``, ``per_sample``,
        ``from_masks``) at ``num_image_tokens`` per image, i.e. at the last
        dimension of the masks (default: the native input size); ``grid``: the
        image-token grid of the input, where the count alone does not tell the
        cost (window attention)."""

    @abstractmethod
    def checkpoint_filter(self, state: StateDict) -> StateDict:
        """Pre-trained tensors in this network's naming (see :mod:`.weight_names`) fitted to
        this instance (as timm's ``checkpoint_filter_fn``): e.g. position embeddings resized to
        its grid. Its own state dict comes back unchanged. Dict in, dict out."""

    @abstractmethod
    def describe(self) -> str:
        """The architecture in a few words, for error messages (``DyT ViT (arch ...)``)."""

    @abstractmethod
    def weight_options(self) -> dict:
        """Constructor options that change what pre-trained weights compute without changing
        their names or shapes (an activation, a norm's eps), so that a key-by-key check cannot
        see them. A converted file records the options it was made for; loading it compares
        them with these."""

    # ------------------------------------------------------------ shared by every network
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


def dyt_network(model: nn.Module) -> DyTNetwork:
    """The one DyT network of ``model`` (or ``model`` itself)."""
    networks = [m for m in model.modules() if isinstance(m, DyTNetwork)]
    if len(networks) != 1:
        raise ValueError(f'{type(model).__name__} must hold exactly one DyT network (ViT, '
                         f'Swin), has {len(networks)}')
    return networks[0]
