"""A picture of what the dispatchers kept, per layer, on one input file."""
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from mmengine.config import Config
from torch import nn

from ..models.dyt import threshold_offsets
from .inputs import run_on_file
from .loading import denormalize, dyt_parts

SKIPPED_SHADE = 0.22  # skipped tokens keep this much of their brightness
KEPT_TINT = (np.array([255, 140, 0]), 0.3)  # kept tokens are tinted orange (colour, weight)
GROUP_EDGE = np.array([255, 255, 255])  # outline of a merged token's patches (token merging)
BLOCK_NAMES = {'mlp': 'the MLP', 'attn': 'attention', 'attn_mlp': 'attention / the MLP',
               'layer': 'the whole layer'}
PANEL_INCHES = 1.7


@torch.no_grad()
def dispatch_on_file(model: nn.Module, cfg: Config, path: str) -> Dict:
    """Run the model (its own test mode) on one image or video file.

    Returns the pixels the ViT saw (``(frames, H, W, 3)`` uint8, first view or
    crop), its masks per patch ``(frames, S, N_image)``, the keep rate of each
    frame and site ``(frames, S)``, with token merging the ``sources`` (which token holds each
    patch, ``(frames, S, N_image)``; else None), the patch size, the prediction
    and how many backbone inputs the file made (views, crops).
    """
    prediction, probe = run_on_file(model, cfg, path, keep_inputs=True)
    call = probe.calls[0]
    pixels = denormalize(model, call.inputs[0])
    if pixels.ndim == 3:  # an image: one frame
        pixels = pixels.unsqueeze(1)
    _, vit = dyt_parts(model)
    return dict(pixels=pixels.permute(1, 2, 3, 0).round().byte().numpy(),
                masks=call.patch_masks[:call.frames].numpy(),
                rates=call.keep_rates[:call.frames].numpy(),
                sources=None if call.sources is None else call.sources[:call.frames].numpy(),
                patch_size=vit.patch_size,
                block=BLOCK_NAMES[vit.variant],
                prediction=prediction, num_backbone_inputs=probe.num_inputs,
                sites=vit.site_labels)


def token_map(mask: np.ndarray, height: int, width: int, patch: int) -> np.ndarray:
    """One image's ``(N_image,)`` mask as an ``(H, W)`` pixel map."""
    rows, cols = math.ceil(height / patch), math.ceil(width / patch)
    if rows * cols != mask.size:
        raise ValueError(f'{mask.size} tokens do not tile a {height}x{width} input with '
                         f'patch {patch}')
    grid = mask.reshape(rows, cols)
    return np.repeat(np.repeat(grid, patch, axis=0), patch, axis=1)[:height, :width]


def group_edges(sources: np.ndarray, height: int, width: int, patch: int) -> np.ndarray:
    """``(H, W)`` True on the outline of every merged token (one holding several patches).

    ``sources``: ``(N_image,)`` which token holds each patch (token merging). An
    edge is drawn where a patch of a merged token borders a patch of another
    token, along the first pixel row/column of the later patch. A merged
    token's patches need not touch: each part is outlined.
    """
    grid = token_map(sources, height, width, patch)
    merged = (np.bincount(sources) > 1)[grid]
    edges = np.zeros(grid.shape, dtype=bool)
    edges[1:] |= (grid[1:] != grid[:-1]) & (merged[1:] | merged[:-1])
    edges[:, 1:] |= (grid[:, 1:] != grid[:, :-1]) & (merged[:, 1:] | merged[:, :-1])
    return edges


def highlight(pixels: np.ndarray, pixel_mask: np.ndarray) -> np.ndarray:
    """Kept tokens tinted, skipped ones darkened: readable on dark and bright inputs."""
    kept = pixel_mask[..., None]
    colour, weight = KEPT_TINT
    tinted = (1 - weight) * pixels + weight * colour
    return (kept * tinted + (1 - kept) * SKIPPED_SHADE * pixels).astype(np.uint8)


def describe_prediction(prediction, classes: Optional[Sequence[str]]) -> str:
    if 'pred_label' not in prediction:
        return ''
    label = int(prediction.pred_label.reshape(-1)[0])
    name = f' ({classes[label]})' if classes and label < len(classes) else ''
    score = ''
    if 'pred_score' in prediction:
        score = f', score {float(prediction.pred_score.reshape(-1)[label]):.2f}'
    return f'predicted class {label}{name}{score}'


def draw_dispatch(pixels: np.ndarray, masks: np.ndarray, patch: int, sites: List[str],
                  title: str = '', seg_prediction: Optional[np.ndarray] = None,
                  block: str = 'the dispatched block', rates: Optional[np.ndarray] = None,
                  sources: Optional[np.ndarray] = None) -> Figure:
    """Input, then one panel per dispatch site with kept tokens tinted; keep-rate bars.

    Images get a grid of site panels; clips get one row per frame. ``masks``
    are per patch; ``rates`` the keep rate per frame and site (default the masks' mean);
    ``sources`` (token merging, as :func:`dispatch_on_file` returns them)
    outline each merged token's patches.
    """
    frames, num_sites, _ = masks.shape
    height, width = pixels.shape[1:3]
    cols = num_sites + 1 if frames > 1 else min(num_sites + 1, 7)
    rows = frames if frames > 1 else math.ceil((num_sites + 1) / cols)
    extra = 1 if seg_prediction is not None else 0
    fig = Figure(figsize=(PANEL_INCHES * (cols + extra), PANEL_INCHES * (rows + 0.8)))
    spec = fig.add_gridspec(rows + 1, cols + extra, height_ratios=[1] * rows + [0.6])
    for f in range(frames):
        panels = [('input' if frames == 1 else f'frame {f}', pixels[f])]
        for s, site in enumerate(sites):
            keep = masks[f, s].mean() if rates is None else rates[f, s]
            panel = highlight(pixels[f], token_map(masks[f, s], height, width, patch))
            if sources is not None:
                panel[group_edges(sources[f, s], height, width, patch)] = GROUP_EDGE
            panels.append((f'{site}: {keep:.2f}', panel))
        for i, (name, image) in enumerate(panels):
            row, col = (f, i) if frames > 1 else divmod(i, cols)
            ax = fig.add_subplot(spec[row, col])
            ax.imshow(image, interpolation='nearest')
            ax.set_title(name, fontsize=8)
            ax.axis('off')
    if seg_prediction is not None:
        ax = fig.add_subplot(spec[0, cols])
        ax.imshow(seg_prediction, cmap='tab20', interpolation='nearest')
        ax.set_title('predicted mask', fontsize=8)
        ax.axis('off')
    site_rates = (masks.mean(axis=2) if rates is None else rates).mean(axis=0)
    bars = fig.add_subplot(spec[rows, :])
    bars.bar(range(num_sites), site_rates, color='tab:orange')
    bars.axhline(site_rates.mean(), color='grey', linewidth=0.8, linestyle='--')
    bars.set_xticks(range(num_sites), sites, fontsize=7)
    bars.set_ylim(0, 1)
    bars.tick_params(axis='y', labelsize=7)
    merged = '; white lines outline merged tokens' if sources is not None else ''
    bars.set_title(f'keep rate per layer (mean {site_rates.mean():.2f}); tinted tokens went '
                   f'through {block}, dark ones skipped it{merged}', fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def visualize_dispatch(model: nn.Module, cfg: Config, path: str, out: str) -> Dict:
    """Draw the dispatch of ``model`` on the file ``path`` into ``out``; returns keep rates."""
    run = dispatch_on_file(model, cfg, path)
    prediction = run['prediction']
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    title = ' - '.join(filter(None, [osp.basename(path), describe_prediction(prediction, classes)]))
    if run['num_backbone_inputs'] > 1:
        title += f' (first of {run["num_backbone_inputs"]} views/crops shown)'
    seg = None
    if 'pred_sem_seg' in prediction:
        seg = prediction.pred_sem_seg.data[0].cpu().numpy()
    fig = draw_dispatch(run['pixels'], run['masks'], run['patch_size'], run['sites'], title, seg,
                        run['block'], run['rates'], run['sources'])
    fig.savefig(out, dpi=110)
    rates = run['rates'].mean(axis=0)
    return dict(out=out, frames=len(run['pixels']), keep_rate=float(rates.mean()),
                keep_rate_per_site=[round(float(r), 4) for r in rates], sites=run['sites'],
                threshold_offsets=threshold_offsets(model).tolist())
