"""Watch a DyT model run: what its backbone got and what its dispatchers kept."""
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from ..models.dyt.recorder import DispatchRecorder
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
    """Records every backbone call of a model while active (a context manager): the
    core's :class:`~dyt_mm.models.dyt.recorder.DispatchRecorder` on the model's DyT
    network, with the backbone's inputs, seen per backbone input.

    Folded frames are assumed to be consecutive in the ViT's batch (the
    ``(b t)`` order), so the rows of one clip are ``b*T ... b*T + T - 1``.
    """

    def __init__(self, model: nn.Module, keep_inputs: bool = False):
        self.backbone, self.vit = dyt_parts(model)
        self.recorder = DispatchRecorder(self.vit, masks=True, inputs_of=self.backbone,
                                         keep_inputs=keep_inputs)

    @property
    def calls(self) -> List[BackboneCall]:
        return [BackboneCall(call.inputs, call.batch_size, call.masks, call.site_tokens,
                             call.sources, call.grid) for call in self.recorder.calls]

    def __enter__(self) -> 'DispatchProbe':
        self.recorder.start()
        return self

    def __exit__(self, *exc) -> None:
        self.recorder.stop()

    @property
    def num_inputs(self) -> int:
        return sum(call.batch_size for call in self.recorder.calls)
