"""A trained DyT model tested in a precision, through the Runner: the config's evaluator, the
test keep rate and every keep decision, so that precisions can be compared token by token."""
from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from ..models.dyt.network import dyt_network
from ..models.dyt.recorder import DispatchRecorder
from .precision import check_precision


class TestEpochOnly(Hook):
    """Drops what ``recorder`` saw before the test epoch (an export's tracing call)."""

    def __init__(self, recorder: DispatchRecorder):
        self.recorder = recorder

    def before_test_epoch(self, runner) -> None:
        self.recorder.pop()


class PrecisionResult(NamedTuple):
    precision: str
    metrics: Dict[str, float]  # the config's test evaluator
    keep_rate: float  # DispatchMetricsHook's test/keep_rate
    masks: torch.Tensor  # (test samples, sites, image tokens): every keep decision, in order


def test_config(config: Config, checkpoint: str, work_dir: str, precision: str,
                runtime: str = 'eager') -> Config:
    """``config`` made into a test run of ``checkpoint`` in ``precision`` (and ``runtime``:
    :class:`~dyt_mm.deploy.precision_hook.PrecisionHook`), writing its logs under
    ``work_dir`` (as ``tools/test.py --precision`` does)."""
    check_precision(precision)
    cfg = config.copy()
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.resume = False
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.console_log_level = 'WARNING'
    if cfg.get('visualizer'):  # one visualizer instance per run, named after it
        cfg.visualizer.name = work_dir
    if precision != 'fp32':
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='PrecisionHook', precision=precision, runtime=runtime)]
    return cfg


def evaluate_precision(config: Config, checkpoint: str, precision: str, work_dir: str,
                       runtime: str = 'eager', name: Optional[str] = None) -> PrecisionResult:
    """Test ``checkpoint`` of ``config`` in ``precision`` (in ``runtime``) on the config's
    test set; ``name``: the result's label (default: the precision)."""
    from mmengine.registry import RUNNERS

    from ..utils.checkpoint import CheckpointError
    from . import precision_hook  # noqa: F401  (registers PrecisionHook)
    cfg = test_config(config, checkpoint, work_dir, precision, runtime)
    cfg.setdefault('runner_type', 'DyTRunner')
    runner = RUNNERS.build(cfg)
    with DispatchRecorder(dyt_network(runner.model), masks=True) as recorder:
        runner.register_hook(TestEpochOnly(recorder), priority='LOWEST')
        try:
            metrics = runner.test()
        except CheckpointError as error:
            raise ValueError(str(error)) from None
    masks = [call.masks for call in recorder.calls if call.mode != 'complete']
    keep_rate = runner.message_hub.get_scalar('test/keep_rate').current()
    return PrecisionResult(name or precision, dict(metrics), float(keep_rate),
                           torch.cat(masks).float())


def decision_flips(masks: torch.Tensor, reference: torch.Tensor) -> Dict[str, float]:
    """How ``masks`` differ from ``reference`` (both ``(samples, sites, tokens)`` on the same
    data): the share of keep decisions that flipped, and of samples with any flip."""
    if masks.shape != reference.shape:
        raise ValueError(f'masks of shape {tuple(masks.shape)} cannot be compared with masks '
                         f'of shape {tuple(reference.shape)}: not the same test data')
    flipped = masks != reference
    return dict(flipped_decisions=flipped.double().mean().item(),
                samples_with_a_flip=flipped.flatten(1).any(dim=1).double().mean().item(),
                kept_to_skipped=(flipped & (reference > 0)).double().mean().item(),
                skipped_to_kept=(flipped & (reference == 0)).double().mean().item())


def metric_table(results: List[PrecisionResult], metric: str,
                 scale: float = 1.0) -> List[Dict[str, Optional[float]]]:
    """Per precision: ``metric`` (times ``scale``), its change from fp32 (the first result),
    the keep rate and its change, and the decision flips against fp32."""
    reference = results[0]
    rows = []
    for result in results:
        if metric not in result.metrics:
            raise ValueError(f'the evaluator reports no {metric!r}; it reports '
                             f'{", ".join(sorted(result.metrics))}')
        value = result.metrics[metric] * scale
        rows.append(dict(precision=result.precision, metric=value,
                         metric_change=value - reference.metrics[metric] * scale,
                         keep_rate=result.keep_rate,
                         keep_rate_change=result.keep_rate - reference.keep_rate,
                         **decision_flips(result.masks, reference.masks)))
    return rows
