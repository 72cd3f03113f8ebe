"""Watch a DyT model run: what its backbone got and what its dispatchers kept."""
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .loading import dyt_parts


class BackboneCall(NamedTuple):
    inputs: Optional[torch.Tensor]  # the backbone input, if kept
    batch_size: int  # backbone inputs (images, crops or clips) in this call
    masks: torch.Tensor  # (batch_size * frames, S, N_image) from the ViT
    site_tokens: torch.Tensor  # (S,) image tokens each site saw (fewer with token merging)
    sources: Optional[torch.Tensor] = None  # token merging: DyTOutput.sources
    grid: Optional[Tuple[int, int]] = None  # the ViT's image-token grid

    @property
    def keep_rates(self) -> torch.Tensor:
        """``(batch_size * frames, S)`` kept share of the image tokens each site saw."""
        return self.masks.sum(dim=-1).double() / self.site_tokens

    @property
    def keep_rate(self) -> float:
        """The kept share over every ViT image, site and token of the call."""
        return self.keep_rates.mean().item()

    @property
    def patch_masks(self) -> torch.Tensor:
        """``(batch_size * frames, S, N_image)`` masks per original patch: a merged token's
        decision on each patch it holds (the masks themselves without merging)."""
        return self.masks if self.sources is None else self.masks.gather(-1, self.sources)

    @property
    def frames(self) -> int:
        """ViT images per backbone input (T for clips, 1 otherwise)."""
        return self.masks.shape[0] // self.batch_size

    @property
    def kept(self) -> torch.Tensor:
        """``(batch_size, frames, S)`` kept image tokens per site."""
        counts = self.masks.sum(dim=-1)
        return counts.reshape(self.batch_size, self.frames, counts.shape[-1])


class DispatchProbe:
    """Records every backbone call of a model while active (a context manager).

    Folded frames are assumed to be consecutive in the ViT's batch (the
    ``(b t)`` order), so the rows of one clip are ``b*T ... b*T + T - 1``.
    """

    def __init__(self, model: nn.Module, keep_inputs: bool = False):
        self.backbone, self.vit = dyt_parts(model)
        self.keep_inputs = keep_inputs
        self.calls: List[BackboneCall] = []
        self._pending = None
        self._handles = []

    def _on_backbone(self, module, args) -> None:
        x = args[0]
        self._pending = (x.detach().clone() if self.keep_inputs else None, x.shape[0])

    def _on_vit(self, module, args, output) -> None:
        inputs, batch_size = self._pending
        masks = output.masks.detach().cpu()
        sources = None if output.sources is None else output.sources.cpu()
        self.calls.append(BackboneCall(inputs, batch_size, masks,
                                       module.site_tokens(masks.shape[-1]), sources,
                                       output.grid))

    def __enter__(self) -> 'DispatchProbe':
        self._handles = [self.backbone.register_forward_pre_hook(self._on_backbone),
                         self.vit.register_forward_hook(self._on_vit)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def num_inputs(self) -> int:
        return sum(call.batch_size for call in self.calls)
