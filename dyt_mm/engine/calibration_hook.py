"""ThresholdCalibrationHook: the trained model keeps r of the tokens at test."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..models.dyt import calibrate_budget
from ..utils.loaders import calibration_loader
from .runner_parts import dyt_objective_of, unwrapped_model


@HOOKS.register_module()
class ThresholdCalibrationHook(Hook):
    """After the last training iteration, sets the dispatchers' threshold offsets
    (:func:`dyt_mm.calibrate_budget`) so that the model keeps r of the tokens at test,
    measured on the training split through the test pipeline.

    r is the model's configured target keep rate (its ``dyt_objective``'s, as
    the run starts, before any warm-up changes it). The log shows the keep rate
    there before and after (``train/calibration_keep_rate_before``,
    ``train/calibration_keep_rate``). The offsets are buffers of the model, so
    the last checkpoint and the last validation carry them.

    Args:
        calibration_samples: calibrate on the first N training samples only
            (default all).
    """

    # after DispatchMetricsHook (ABOVE_NORMAL) has logged the last iteration, before
    # LoggerHook (BELOW_NORMAL) writes its line and CheckpointHook (VERY_LOW) saves the
    # last checkpoint
    priority = 'NORMAL'

    def __init__(self, calibration_samples: Optional[int] = None):
        if calibration_samples is not None and calibration_samples < 1:
            raise ValueError(f'calibration_samples must be >= 1, got {calibration_samples!r}')
        self.calibration_samples = calibration_samples
        self.target: Optional[float] = None

    def before_run(self, runner) -> None:
        # before any hook's before_train: a rate warm-up changes the objective's value
        objective = getattr(unwrapped_model(runner), 'dyt_objective', None)
        self.target = None if objective is None else objective.target_rate

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.is_last_train_iter(runner):
            self.calibrate(runner)

    def calibrate(self, runner) -> None:
        if self.target is None:
            dyt_objective_of(runner, self)  # the error that says what is missing
        loader = calibration_loader(runner.cfg, self.calibration_samples)
        result = calibrate_budget(unwrapped_model(runner), loader, self.target)
        for key in ('keep_rate_before', 'keep_rate'):
            runner.message_hub.update_scalar(f'train/calibration_{key}', result[key])
        runner.logger.info(
            f'{type(self).__name__}: calibrated the test-time threshold on '
            f'{result["num_images"]} training images to keep r = {self.target:g}: keep rate '
            f'{result["keep_rate_before"]:.4f} -> {result["keep_rate"]:.4f} (offset '
            f'{result["offsets"][0]:+.4f}, {result["passes"]} passes)')
