"""DyTScheduleHook: the Gumbel temperature and the DyT loss settings over training."""
import math
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..models.dyt import set_tau
from ..models.dyt.registry import check_real
from .runner_parts import dyt_objective_of, unwrapped_model


@HOOKS.register_module()
class DyTScheduleHook(Hook):
    """Sets tau, the target keep rate r and the distillation weight before every training
    iteration, and logs them (``train/tau``, ``train/target_rate``,
    ``train/distill_weight``).

    The model's ``dyt_objective`` holds the configured r and distillation
    weight; they are read when training starts and are where the warm-ups end.

    Args:
        tau: Gumbel-sigmoid temperature at the start (5 in the paper).
        final_tau: if set, tau is annealed exponentially from ``tau`` to
            ``final_tau`` over training (the paper's "schedule" 5 -> 0.1).
        rate_warmup_iters: the target keep rate goes linearly from 1 to the
            model's r over these iterations (0: no warm-up).
        distill_warmup_iters: the distillation weight goes linearly from 0 to
            its configured value over these iterations.
    """

    # any: it sets values that the model reads in its own forward, after every hook's
    # before_train_iter
    priority = 'NORMAL'

    def __init__(self, tau: float = 5.0, final_tau: Optional[float] = None,
                 rate_warmup_iters: int = 0, distill_warmup_iters: int = 0):
        check_real('tau', tau, above=0)
        if final_tau is not None:
            check_real('final_tau', final_tau, above=0)
        check_real('rate_warmup_iters', rate_warmup_iters, at_least=0)
        check_real('distill_warmup_iters', distill_warmup_iters, at_least=0)
        self.tau = tau
        self.final_tau = final_tau
        self.rate_warmup_iters = rate_warmup_iters
        self.distill_warmup_iters = distill_warmup_iters
        self.configured: Dict[str, float] = {}

    def scheduled_values(self, iteration: int, max_iters: int, target_rate: float,
                         distill_weight: float) -> Dict[str, float]:
        """tau, target_rate and distill_weight at ``iteration`` (0-based), for the
        configured ``target_rate`` and ``distill_weight``."""
        progress = min(iteration / max(max_iters - 1, 1), 1.0)
        tau = self.tau
        if self.final_tau is not None:
            tau = math.exp(math.log(self.tau) + progress * math.log(self.final_tau / self.tau))
        rate = target_rate
        if iteration < self.rate_warmup_iters:
            rate = 1.0 + (rate - 1.0) * iteration / self.rate_warmup_iters
        distill = distill_weight
        if iteration < self.distill_warmup_iters:
            distill = distill * iteration / self.distill_warmup_iters
        return dict(tau=tau, target_rate=rate, distill_weight=distill)

    def before_train(self, runner) -> None:
        objective = dyt_objective_of(runner, self)
        self.configured = dict(target_rate=objective.target_rate,
                               distill_weight=objective.distill_weight)
        self.apply(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.apply(runner)

    def apply(self, runner) -> None:
        """Set the values of the Runner's current iteration and log them."""
        values = self.scheduled_values(runner.iter, runner.max_iters, **self.configured)
        set_tau(unwrapped_model(runner), values['tau'])
        objective = dyt_objective_of(runner, self)
        objective.target_rate = values['target_rate']
        objective.distill_weight = values['distill_weight']
        for key, value in values.items():
            runner.message_hub.update_scalar(f'train/{key}', value)
