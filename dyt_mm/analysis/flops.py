"""FLOPs of a whole DyT model: the ViT analytically, everything else by tracing.

One multiply-add is one FLOP (fvcore's convention, used by the paper). The
ViT is counted by :class:`~dyt_mm.ViTFlops`, which knows the attention
matmuls (fused attention hides them from tracers) and what ``sparse``
execution skips. What lies outside the ViT (the task head, a segmentation
neck or pyramid, a temporal head) does not depend on the masks; mmengine's
``FlopAnalyzer`` (fvcore's counter) counts it once by tracing the model in
``complete`` mode and subtracting what it attributes to the ViT.
"""
import warnings
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn

from ..models.dyt import DyTNetwork, dyt_mode
from .inputs import random_backbone_inputs
from .loading import dyt_parts
from .probe import BackboneCall
from .toolbox import model_input, toolbox_of


class _Call(nn.Module):
    """``module(*inputs, **kwargs)`` as a module a tracer can take, names kept."""

    def __init__(self, module: nn.Module, kwargs: dict):
        super().__init__()
        self.module = module
        self.kwargs = kwargs

    def forward(self, *inputs):
        return self.module(*inputs, **self.kwargs)


class _Features(nn.Module):
    """A detector's ``extract_feat`` (backbone and neck) as a module to trace."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, inputs):
        return self.detector.extract_feat(inputs)


@torch.no_grad()
def count_outside_vit(module: nn.Module, inputs: tuple, vit: DyTNetwork, **kwargs) -> Dict:
    """Trace ``module(*inputs, **kwargs)`` once with ``vit`` in complete mode.

    Returns ``outside`` (FLOPs not in the ViT), ``frames`` (ViT images per
    sample of the batch), ``num_image_tokens`` (per ViT image) and ``grid``.
    """
    seen, grids = [], []

    def record(module, inputs, out):
        # shapes seen while tracing are traced values: read them as ints
        seen.append(tuple(int(n) for n in out.masks.shape))
        grids.append(None if out.grid is None else tuple(int(n) for n in out.grid))

    handle = vit.register_forward_hook(record)
    wrapper = _Call(module, kwargs)
    vit_name = next(f'module.{name}' if name else 'module'
                    for name, m in module.named_modules() if m is vit)
    try:
        with dyt_mode(vit, 'complete'), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer warnings about data-dependent shapes
            analyzer = FlopAnalyzer(wrapper, inputs)
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total, inside = analyzer.total(), analyzer.by_module()[vit_name]
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f'{type(module).__name__} did not call its DyT ViT as a module')
    batch = inputs[0].shape[0]
    return dict(outside=float(total - inside), frames=seen[0][0] // batch,
                num_image_tokens=seen[0][-1], grid=grids[0])


class ModelFlops:
    """FLOPs per backbone input (image, crop or clip) of a DyT model.

    Args:
        vit: the model's DyT ViT.
        frames: ViT images per backbone input (T for clips).
        outside: FLOPs outside the ViT per backbone input (heads, necks).
        num_image_tokens: image tokens per ViT image at the counted size.
        grid: their grid (its shape matters to window attention only).
    """

    def __init__(self, vit: DyTNetwork, frames: int, outside: float, num_image_tokens: int,
                 grid: Optional[Tuple[int, int]] = None):
        self.vit = vit
        self.frames = frames
        self.outside = outside
        self.num_image_tokens = num_image_tokens
        self.grid = grid or (num_image_tokens, 1)

    def vit_flops(self):
        return self.vit.flops_counter(self.num_image_tokens, self.grid)

    def dense(self) -> float:
        """The plain pre-trained ViT (no adapters, nothing skipped) plus heads."""
        return self.outside + self.frames * self.vit_flops().dense()

    def complete(self) -> float:
        """The DyT model with nothing skipped (adapters on)."""
        return self.outside + self.frames * self.vit_flops().complete()

    def merged(self) -> float:
        """The plain pre-trained ViT with the model's token merging, plus heads."""
        return self.outside + self.frames * self.vit_flops().merged()

    def backbone_dense(self) -> float:
        return self.frames * self.vit_flops().dense()

    def per_input(self, call: BackboneCall) -> torch.Tensor:
        """What ``sparse`` execution cost each backbone input of a recorded call."""
        return self.outside + backbone_flops(self.vit, call)


def backbone_flops(vit: DyTNetwork, call: BackboneCall) -> torch.Tensor:
    """The ViT's FLOPs on each backbone input of a recorded call, as ``sparse`` runs it.

    Summed over the frames of a clip.
    """
    vit_flops = vit.flops_counter(call.masks.shape[-1], call.grid)
    kept = call.kept
    return vit_flops.per_sample(kept.flatten(0, 1)).reshape(kept.shape[:2]).sum(dim=1)


def dispatch_summary(flops: ModelFlops, calls: List[BackboneCall]) -> Dict:
    """Per-input DyT FLOPs (mean, min, max, ratio to dense) and keep rates per site."""
    per_input = torch.cat([flops.per_input(call) for call in calls])
    rates = torch.cat([call.keep_rates for call in calls]).mean(dim=0)
    dense = flops.dense()
    return dict(
        num_inputs=per_input.numel(),
        gflops_mean=per_input.mean().item() / 1e9,
        gflops_min=per_input.min().item() / 1e9,
        gflops_max=per_input.max().item() / 1e9,
        ratio_to_dense=per_input.mean().item() / dense,
        keep_rate=rates.mean().item(),
        keep_rate_per_site=[round(r, 4) for r in rates.tolist()],
    )


def model_flops(model: nn.Module, cfg, shape=None) -> ModelFlops:
    """:class:`ModelFlops` of the config's model at its native input size (or ``shape``)."""
    toolbox = toolbox_of(cfg)
    _, vit = dyt_parts(model)
    example = model_input(toolbox, random_backbone_inputs(model, 1, shape))
    if toolbox.counted == 'features':  # mmdet: backbone + neck, as the paper counts
        traced = count_outside_vit(_Features(model), (example, ), vit)
    else:
        traced = count_outside_vit(model, (example, ), vit, mode='tensor',
                                   **toolbox.tensor_kwargs)
    return ModelFlops(vit, **traced)
