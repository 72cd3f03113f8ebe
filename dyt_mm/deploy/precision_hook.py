"""PrecisionHook: test a trained model in bfloat16 or with an int8 base, through the Runner."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..engine.runner_parts import dyt_network_of
from .precision import check_precision, set_precision


@HOOKS.register_module()
class PrecisionHook(Hook):
    """Puts the model's DyT network in ``precision`` (``fp32``, ``bf16``, ``int8``; see
    :mod:`dyt_mm.deploy.precision`) before the test loop, after the checkpoint is loaded:
    the config's evaluator and the dispatch metrics (``test/keep_rate``) then measure the
    model in that precision. The change is in place and stays for the rest of the run.
    """

    priority = 'VERY_HIGH'  # before any other hook runs the model

    def __init__(self, precision: str):
        check_precision(precision)
        self.precision = precision

    def before_test(self, runner) -> None:
        set_precision(dyt_network_of(runner, self), self.precision)
