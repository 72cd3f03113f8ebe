"""TrainableCheckpointHook: checkpoints without the frozen base."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.peft import adapter_only_keys
from .runner_parts import unwrapped_model


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Checkpoints keep only the trainable parameters (adapters, dispatchers, routers,
    head), the buffers of the modules that own them (BatchNorm statistics) and the
    dispatchers' threshold offsets (:func:`dyt_mm.utils.peft.adapter_only_keys`), and
    say so in their ``meta`` (``dyt_trainable_only``); the frozen base comes from the
    backbone's ``init_cfg`` when the checkpoint is loaded.
    """

    # after EMAHook (NORMAL), which swaps its averaged weights into every key of the saved
    # state dict and would fail on a filtered one
    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        kept = adapter_only_keys(unwrapped_model(runner))
        checkpoint['state_dict'] = type(checkpoint['state_dict'])(
            (k, v) for k, v in checkpoint['state_dict'].items() if k in kept)
        checkpoint.setdefault('meta', {})['dyt_trainable_only'] = True
