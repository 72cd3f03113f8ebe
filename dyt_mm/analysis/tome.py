"""DyT beside token merging (ToMe) on the same weights: the paper's Table 5, timed."""
from typing import Callable, Dict, Optional

import torch
from torch import nn

from ..models.dyt import DyTViT, set_mode, set_threshold_offsets, threshold_offsets
from ..models.dyt.calibration import calibrate_keep_rate
from .flops import ModelFlops, count_outside_vit
from .loading import dyt_parts
from .probe import DispatchProbe
from .timing import reliability, speedup_report, throughputs, time_interleaved

# run -> (execution mode, whether tokens merge): the four rows of the paper's Table 5 that one
# DyT model can run with its own weights
MERGING_RUNS = {
    'dense': ('complete', False),
    'dyt': ('sparse', False),
    'tome': ('complete', True),
    'dyt_tome': ('sparse', True),
}


@torch.no_grad()
def compare_merging(model_or_backbone: nn.Module, inputs: torch.Tensor, r: int,
                    num_iters: int = 20, warmup: int = 3,
                    calibrate_rate: Optional[float] = None,
                    progress: Optional[Callable[[], None]] = None,
                    max_load: Optional[float] = None) -> Dict:
    """Time dense, DyT, ToMe (``r`` tokens merged per block) and DyT + ToMe on the same
    weights and inputs, interleaved (:func:`~.timing.time_interleaved`).

    ``calibrate_rate``: set the dispatchers' threshold offsets so that DyT
    keeps this share of tokens, once without and once with merging (the
    merged tokens are other tokens); each run uses its own offsets. Returns
    per run (``dense``, ``dyt``, ``tome``, ``dyt_tome``): throughput, batch
    times, backbone GFLOPs per input from the masks of that run, keep rate,
    speedup over dense, its ceiling (the FLOPs ratio) and efficiency; and
    ``unreliable`` (:func:`~.timing.reliability`, ``max_load`` its load
    limit). The model's merging, offsets and mode are restored afterwards.
    """
    backbone, vit = dyt_parts(model_or_backbone)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f'tokens merged per block must be an integer >= 1, got {r!r}')
    if not isinstance(vit, DyTViT):
        raise ValueError(f'token merging is built for the plain ViT (DyTViT); this model\'s '
                         f'network is a {type(vit).__name__}')
    if not vit.has_dispatch:
        raise ValueError('comparing DyT with token merging needs a model with dispatchers '
                         '(a DyT config, not dispatch=None)')
    saved = vit.merge_r, threshold_offsets(vit), vit.mode
    offsets = {}
    try:
        for merged in (False, True):
            vit.merge_r = r if merged else 0
            if calibrate_rate is not None:
                calibrate_keep_rate(backbone, inputs, calibrate_rate)
            offsets[merged] = threshold_offsets(vit)

        def configure(name: str) -> None:
            mode, merged = MERGING_RUNS[name]
            vit.merge_r = r if merged else 0
            set_threshold_offsets(vit, offsets[merged])
            set_mode(vit, mode)

        def run_of(name: str) -> Callable:
            def run():
                configure(name)
                backbone(inputs)
            return run

        traced = count_outside_vit(backbone, (inputs[:1], ), vit)
        report = dict(batch_size=inputs.shape[0], num_iters=num_iters, warmup=warmup,
                      device=str(inputs.device), threads=torch.get_num_threads(), merge_r=r)
        for name in MERGING_RUNS:
            configure(name)
            with DispatchProbe(backbone) as probe:
                backbone(inputs)
            flops = ModelFlops(vit, traced['frames'], traced['outside'],
                               traced['num_image_tokens'])
            # complete mode runs no dispatcher: the complete model's FLOPs (merged or not)
            cost = (flops.complete() if MERGING_RUNS[name][0] == 'complete' else
                    flops.per_input(probe.calls[0]).mean().item())
            report[f'gflops_{name}'] = cost / 1e9
            report[f'keep_rate_{name}'] = probe.calls[0].keep_rate
        timings = time_interleaved({name: run_of(name) for name in MERGING_RUNS},
                                   inputs.device, num_iters, warmup, progress)
    finally:
        vit.merge_r = saved[0]
        set_threshold_offsets(vit, saved[1])
        set_mode(vit, saved[2])
    report.update(throughputs(timings, inputs.shape[0]))
    for name in MERGING_RUNS:
        ceiling = report['gflops_dense'] / report[f'gflops_{name}']
        figures = speedup_report(timings, 'dense', name, ceiling)
        report.update({f'ceiling_{name}': ceiling, f'speedup_{name}': figures['speedup'],
                       f'efficiency_{name}': figures['efficiency']})
    bounds = {f'{name} speedup': (report[f'speedup_{name}'], report[f'ceiling_{name}'])
              for name in MERGING_RUNS if name != 'dense'}
    report.update(reliability(timings, bounds, max_load))
    return report
