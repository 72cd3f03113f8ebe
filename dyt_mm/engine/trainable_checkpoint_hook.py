"""TrainableCheckpointHook: checkpoints without the frozen base."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.peft import make_trainable_only
from .runner_parts import unwrapped_model


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Checkpoints keep only the trainable parameters (adapters, dispatchers, routers,
    head), the buffers of the modules that own them (BatchNorm statistics) and the
    dispatchers' threshold offsets, and say so in their ``meta``; both, and loading
    such a file back, belong to :mod:`dyt_mm.utils.peft`. The frozen base comes from
    the backbone's ``init_cfg`` when the checkpoint is loaded.
    """

    # after EMAHook (NORMAL), which swaps its averaged weights into every key of the saved
    # state dict and would fail on a filtered one
    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        make_trainable_only(unwrapped_model(runner), checkpoint)
