from .calibration_hook import ThresholdCalibrationHook
from .hooks import DyTHook
from .metrics_hook import DispatchMetricsHook
from .runner import DyTRunner
from .schedule_hook import DyTScheduleHook
from .trainable_checkpoint_hook import TrainableCheckpointHook

__all__ = [
    'DyTHook', 'DyTRunner', 'DyTScheduleHook', 'DispatchMetricsHook', 'ThresholdCalibrationHook',
    'TrainableCheckpointHook'
]
