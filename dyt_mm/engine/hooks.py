"""DyTHook: schedules the DyT terms and reports what the dispatchers do."""
import math
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..models.dyt import DyTNetwork, set_tau
from ..models.dyt.network import dyt_network


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


class _DispatchRecorder:
    """Collects per-sample kept-token counts from every non-complete ViT forward."""

    def __init__(self, vit: DyTNetwork):
        self.vit = vit
        self.kept: List[torch.Tensor] = []
        self.num_image_tokens = None
        self.grid = None
        self._handle = vit.register_forward_hook(self._record)

    def _record(self, module, inputs, output) -> None:
        if module.mode == 'complete':
            return  # the teacher pass skips nothing; it is not what DyT costs
        self.kept.append(output.masks.detach().sum(dim=-1).cpu())
        self.num_image_tokens = output.masks.shape[-1]
        self.grid = output.grid

    def pop(self) -> Optional[torch.Tensor]:
        """``(samples, sites)`` kept counts since the last pop, or None."""
        if not self.kept:
            return None
        kept, self.kept = torch.cat(self.kept), []
        return kept

    def remove(self) -> None:
        self._handle.remove()


@HOOKS.register_module()
class DyTHook(Hook):
    """Owns the schedule of the DyT terms and puts dispatch figures in the logs.

    The loss terms are computed by the model (its ``dyt_objective``); this hook
    only changes their settings over training and reports:
    ``keep_rate`` (mean over layers and image tokens), ``keep_rate_l{i}`` per
    dispatch site, ``gflops`` (mean backbone GFLOPs per image or frame, as the
    ``sparse`` mode runs it) and ``flops_ratio`` (to the dense pre-trained ViT),
    at train (every iteration) and at val/test (over the whole epoch).

    Args:
        tau: Gumbel-sigmoid temperature at the start (5 in the paper).
        final_tau: if set, tau is annealed exponentially from ``tau`` to
            ``final_tau`` over training (the paper's "schedule" 5 -> 0.1).
        rate_warmup_iters: the target keep rate goes linearly from 1 to the
            model's r over these iterations (0: no warm-up).
        distill_warmup_iters: the distillation weight goes linearly from 0 to
            its configured value over these iterations.
        save_trainable_only: checkpoints keep only the trainable parameters
            (adapters, dispatchers, routers, head), the buffers of the modules
            that own them (BatchNorm statistics) and the dispatchers' threshold
            offsets; the frozen base comes from the backbone's ``init_cfg`` when
            the checkpoint is loaded.
        calibrate_to_target: after the last training iteration (before the
            last checkpoint is saved and the last validation runs), set the
            dispatchers' threshold offsets (:func:`dyt_mm.calibrate_budget`)
            so that the model keeps r of the tokens at test, measured on the
            training split through the test pipeline; the log shows the keep
            rate there before and after (``train/calibration_keep_rate_*``).
        calibration_samples: calibrate on the first N training samples only
            (default all).
    """

    priority = 'NORMAL'

    def __init__(self, tau: float = 5.0, final_tau: Optional[float] = None,
                 rate_warmup_iters: int = 0, distill_warmup_iters: int = 0,
                 save_trainable_only: bool = False, calibrate_to_target: bool = False,
                 calibration_samples: Optional[int] = None):
        for name, value in (('tau', tau), ('final_tau', final_tau)):
            if value is not None and not value > 0:
                raise ValueError(f'{name} must be > 0, got {value!r}')
        for name, value in (('rate_warmup_iters', rate_warmup_iters),
                            ('distill_warmup_iters', distill_warmup_iters)):
            if value < 0:
                raise ValueError(f'{name} must be >= 0, got {value!r}')
        if calibration_samples is not None and calibration_samples < 1:
            raise ValueError(f'calibration_samples must be >= 1, got {calibration_samples!r}')
        self.tau = tau
        self.final_tau = final_tau
        self.rate_warmup_iters = rate_warmup_iters
        self.distill_warmup_iters = distill_warmup_iters
        self.save_trainable_only = save_trainable_only
        self.calibrate_to_target = calibrate_to_target
        self.calibration_samples = calibration_samples
        self._recorder: Optional[_DispatchRecorder] = None
        self._targets: Dict[str, float] = {}

    # ----------------------------------------------------------- discovery
    @staticmethod
    def find_vit(runner) -> DyTNetwork:
        try:
            return dyt_network(_unwrap(runner.model))
        except ValueError as error:
            raise RuntimeError(f'DyTHook: {error}') from None

    @staticmethod
    def find_objective(runner):
        objective = getattr(_unwrap(runner.model), 'dyt_objective', None)
        if objective is None:
            raise RuntimeError('DyTHook needs a DyT model (one with a `dyt_objective`), got '
                               f'{type(_unwrap(runner.model)).__name__}')
        return objective

    def before_run(self, runner) -> None:
        self._recorder = _DispatchRecorder(self.find_vit(runner))

    def after_run(self, runner) -> None:
        if self._recorder is not None:
            self._recorder.remove()
            self._recorder = None

    # ------------------------------------------------------------ schedule
    def before_train(self, runner) -> None:
        objective = self.find_objective(runner)
        self._targets = dict(target_rate=objective.target_rate,
                             distill_weight=objective.distill_weight)
        self._apply_schedule(runner, runner.iter)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply_schedule(runner, runner.iter)

    def scheduled_values(self, iteration: int, max_iters: int) -> Dict[str, float]:
        """tau, target_rate and distill_weight at ``iteration`` (0-based)."""
        progress = min(iteration / max(max_iters - 1, 1), 1.0)
        tau = self.tau
        if self.final_tau is not None:
            tau = math.exp(math.log(self.tau) + progress * math.log(self.final_tau / self.tau))
        rate = self._targets['target_rate']
        if iteration < self.rate_warmup_iters:
            rate = 1.0 + (rate - 1.0) * iteration / self.rate_warmup_iters
        distill = self._targets['distill_weight']
        if iteration < self.distill_warmup_iters:
            distill = distill * iteration / self.distill_warmup_iters
        return dict(tau=tau, target_rate=rate, distill_weight=distill)

    def _apply_schedule(self, runner, iteration: int) -> None:
        values = self.scheduled_values(iteration, runner.max_iters)
        set_tau(_unwrap(runner.model), values['tau'])
        objective = self.find_objective(runner)
        objective.target_rate = values['target_rate']
        objective.distill_weight = values['distill_weight']
        for key, value in values.items():
            runner.message_hub.update_scalar(f'train/{key}', value)

    # ----------------------------------------------------------- reporting
    def dispatch_figures(self, kept: torch.Tensor, num_image_tokens: int) -> Dict[str, float]:
        """Keep rates and FLOPs from ``(samples, sites)`` kept-token counts."""
        vit = self._recorder.vit
        rates = kept.double().mean(dim=0) / vit.site_tokens(num_image_tokens)
        # The grid's shape matters only to window attention (recorded from the forward).
        flops = vit.flops_counter(num_image_tokens, self._recorder.grid)
        per_sample = flops.per_sample(kept)
        figures = {'keep_rate': rates.mean().item()}
        figures.update({f'keep_rate_l{i}': r.item() for i, r in enumerate(rates)})
        figures['gflops'] = per_sample.mean().item() / 1e9
        figures['flops_ratio'] = per_sample.mean().item() / flops.dense()
        return figures

    def _report(self, runner, mode: str) -> None:
        kept = self._recorder.pop() if self._recorder else None
        if kept is None:
            return
        for key, value in self.dispatch_figures(kept, self._recorder.num_image_tokens).items():
            runner.message_hub.update_scalar(f'{mode}/{key}', value)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._report(runner, 'train')
        # before CheckpointHook (lower priority) saves the last checkpoint
        if self.calibrate_to_target and self.is_last_train_iter(runner):
            self._calibrate(runner)

    def _calibrate(self, runner) -> None:
        from ..analysis.inputs import calibration_loader
        from ..models.dyt import calibrate_budget

        target = self._targets['target_rate']
        loader = calibration_loader(runner.cfg, self.calibration_samples)
        result = calibrate_budget(_unwrap(runner.model), loader, target)
        self._recorder.pop()  # the calibration passes are no training iteration
        for key in ('keep_rate_before', 'keep_rate'):
            runner.message_hub.update_scalar(f'train/calibration_{key}', result[key])
        runner.logger.info(
            f'DyTHook: calibrated the test-time threshold on {result["num_images"]} training '
            f'images to keep r = {target:g}: keep rate {result["keep_rate_before"]:.4f} -> '
            f'{result["keep_rate"]:.4f} (offset {result["offsets"][0]:+.4f}, '
            f'{result["passes"]} passes)')

    def before_val_epoch(self, runner) -> None:
        self._recorder.pop()  # drop anything recorded outside this loop

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._recorder.pop()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'test')

    # --------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.save_trainable_only:
            return
        from ..utils.peft import adapter_only_keys

        kept = adapter_only_keys(_unwrap(runner.model))
        checkpoint['state_dict'] = type(checkpoint['state_dict'])(
            (k, v) for k, v in checkpoint['state_dict'].items() if k in kept)
        checkpoint.setdefault('meta', {})['dyt_trainable_only'] = True
