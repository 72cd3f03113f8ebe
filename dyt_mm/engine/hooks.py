"""DyTHook: the DyT hooks in one, as configs name them."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import get_priority
from mmengine.registry import HOOKS
from mmengine.utils import is_method_overridden

from .calibration_hook import ThresholdCalibrationHook
from .metrics_hook import DispatchMetricsHook
from .schedule_hook import DyTScheduleHook
from .trainable_checkpoint_hook import TrainableCheckpointHook

PARTS = (DyTScheduleHook, DispatchMetricsHook, ThresholdCalibrationHook,
         TrainableCheckpointHook)


@HOOKS.register_module()
class DyTHook(Hook):
    """Schedules the DyT terms and puts dispatch figures in the logs; optionally
    calibrates the test-time threshold and saves adapter-only checkpoints.

    A composite of the focused hooks, for configs that want them all under one
    name: :class:`DyTScheduleHook` (tau, r and distillation warm-ups),
    :class:`DispatchMetricsHook` (``keep_rate``, ``keep_rate_l{i}``, ``gflops``,
    ``flops_ratio`` at train, val and test), and, when asked,
    :class:`ThresholdCalibrationHook` and :class:`TrainableCheckpointHook`.
    They run at this hook's priority, each stage in the order of their own
    priorities (as they would run if registered one by one); ``parts`` holds
    them.

    Args:
        tau, final_tau, rate_warmup_iters, distill_warmup_iters: see
            :class:`DyTScheduleHook`.
        save_trainable_only: checkpoints keep only what training changes
            (:class:`TrainableCheckpointHook`); the frozen base comes from the
            backbone's ``init_cfg`` when the checkpoint is loaded.
        calibrate_to_target: after the last training iteration (before the
            last checkpoint is saved and the last validation runs), calibrate the
            threshold so that the model keeps r at test
            (:class:`ThresholdCalibrationHook`).
        calibration_samples: calibrate on the first N training samples only
            (default all).
    """

    priority = 'NORMAL'

    def __init__(self, tau: float = 5.0, final_tau: Optional[float] = None,
                 rate_warmup_iters: int = 0, distill_warmup_iters: int = 0,
                 save_trainable_only: bool = False, calibrate_to_target: bool = False,
                 calibration_samples: Optional[int] = None):
        parts = [DyTScheduleHook(tau, final_tau, rate_warmup_iters, distill_warmup_iters),
                 DispatchMetricsHook()]
        calibration = ThresholdCalibrationHook(calibration_samples)  # checks the value
        if calibrate_to_target:
            parts.append(calibration)
        if save_trainable_only:
            parts.append(TrainableCheckpointHook())
        # a stable sort: parts of one priority keep the order above
        self.parts = sorted(parts, key=lambda part: get_priority(part.priority))


def _run_parts(stage: str):
    def run(self, runner, *args, **kwargs) -> None:
        for part in self.parts:
            getattr(part, stage)(runner, *args, **kwargs)
    run.__name__ = stage
    run.__doc__ = f'``{stage}`` of each part.'
    return run


# the stages a part may act at: each runs the parts as the Runner runs hooks
for _stage in Hook.stages:
    if any(is_method_overridden(_stage, Hook, part) for part in PARTS):
        setattr(DyTHook, _stage, _run_parts(_stage))
