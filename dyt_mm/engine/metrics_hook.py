"""DispatchMetricsHook: what the dispatchers keep and what it costs, in the logs."""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..models.dyt.recorder import DispatchRecorder, NetworkCall
from .runner_parts import dyt_network_of


@HOOKS.register_module()
class DispatchMetricsHook(Hook):
    """Logs ``keep_rate`` (mean over dispatch sites and image tokens), ``keep_rate_l{i}``
    per site, ``gflops`` (mean backbone GFLOPs per image or frame, as the ``sparse`` mode
    runs it) and ``flops_ratio`` (to the dense pre-trained ViT): at train for every
    iteration, at val and test over the whole epoch.

    The figures come from the masks of every forward of the DyT network but
    the ``complete`` ones (the self-distillation teacher skips nothing; it is
    not what DyT costs). Forwards outside those loops (a calibration's passes)
    are not counted.
    """

    # before LoggerHook (BELOW_NORMAL) writes the iteration's log line, and before
    # ThresholdCalibrationHook (NORMAL) runs its passes after the last iteration
    priority = 'ABOVE_NORMAL'

    def __init__(self):
        self.recorder: Optional[DispatchRecorder] = None

    def before_run(self, runner) -> None:
        self.recorder = DispatchRecorder(dyt_network_of(runner, self)).start()

    def after_run(self, runner) -> None:
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None

    def dispatch_figures(self, kept: torch.Tensor, num_image_tokens: int,
                         grid: Optional[Tuple[int, int]] = None) -> Dict[str, float]:
        """Keep rates and FLOPs from ``(samples, sites)`` kept-token counts; ``grid``: the
        image-token grid, which only window attention's cost depends on."""
        network = self.recorder.network
        rates = kept.double().mean(dim=0) / network.site_tokens(num_image_tokens)
        flops = network.flops_counter(num_image_tokens, grid)
        per_sample = flops.per_sample(kept)
        figures = {'keep_rate': rates.mean().item()}
        figures.update({f'keep_rate_l{i}': r.item() for i, r in enumerate(rates)})
        figures['gflops'] = per_sample.mean().item() / 1e9
        figures['flops_ratio'] = per_sample.mean().item() / flops.dense()
        return figures

    def _report(self, runner, mode: str) -> None:
        calls: List[NetworkCall] = [c for c in self.recorder.pop() if c.mode != 'complete']
        if not calls:
            return
        kept = torch.cat([call.kept for call in calls])
        last = calls[-1]
        for key, value in self.dispatch_figures(kept, last.num_image_tokens, last.grid).items():
            runner.message_hub.update_scalar(f'{mode}/{key}', value)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.recorder.pop()  # not this iteration's

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._report(runner, 'train')

    def before_val_epoch(self, runner) -> None:
        self.recorder.pop()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self.recorder.pop()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'test')
