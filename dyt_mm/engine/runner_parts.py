"""What the DyT hooks look up on a Runner: its model unwrapped, the model's one DyT
network and its DyT objective; a model that lacks one is an error naming the hook."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ..models.dyt.losses import DyTObjective
from ..models.dyt.network import DyTNetwork, dyt_network


def unwrapped_model(runner) -> nn.Module:
    """The Runner's model without its distributed wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def dyt_network_of(runner, hook: Hook) -> DyTNetwork:
    try:
        return dyt_network(unwrapped_model(runner))
    except ValueError as error:
        raise RuntimeError(f'{type(hook).__name__}: {error}') from None


def dyt_objective_of(runner, hook: Hook) -> DyTObjective:
    model = unwrapped_model(runner)
    objective = getattr(model, 'dyt_objective', None)
    if objective is None:
        raise RuntimeError(f'{type(hook).__name__} needs a DyT model (one with a '
                           f'`dyt_objective`), got {type(model).__name__}')
    return objective
