"""A Runner whose checkpoint loading never runs code, except to resume its own run."""
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from ..utils.checkpoint import full_unpickling, load_tensors


@RUNNERS.register_module()
class DyTRunner(Runner):
    """mmengine's Runner with safe checkpoint loading.

    * ``load_from`` / ``tools/test.py CKPT``: only tensors are read
      (:func:`dyt_mm.utils.checkpoint.load_tensors`), so a checkpoint from
      anywhere cannot execute code.
    * ``resume``: the run's own checkpoint is unpickled fully, since the
      optimizer, schedulers and message hub must come back exactly.
    """

    _resuming = False

    def resume(self, filename, *args, **kwargs):
        self._resuming = True
        try:
            with full_unpickling():
                super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename, map_location='cpu', strict=False,
                        revise_keys=[(r'^module.', '')]):
        if self._resuming:
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        checkpoint = load_tensors(filename, map_location='cpu')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint (tensors only) from {filename}')
        return checkpoint
