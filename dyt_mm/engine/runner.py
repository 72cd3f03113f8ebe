"""A Runner whose checkpoint loading never runs code, except to resume its own run."""
import logging
import re

import torch
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
    * ``console_log_level`` (a config key, e.g. ``'WARNING'``): the terminal
      shows only messages of this level and above, while the log file in the
      work dir keeps everything from ``log_level`` (the demos use it).
      mmengine's notices about its own deprecated APIs go to the file only.
    * On a machine without GPUs, mmengine's "GPU number" (its count of
      processes) is explained where it is logged.
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

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        logger = super().build_logger(log_level, log_file, **kwargs)
        console_level = self.cfg.get('console_log_level')
        for handler in logger.handlers:
            if console_level and not isinstance(handler, logging.FileHandler):
                handler.setLevel(console_level)
                handler.addFilter(_no_deprecation_notices)
        if not torch.cuda.is_available() and not any(
                isinstance(f, _ExplainGpuNumber) for f in logger.filters):
            logger.addFilter(_ExplainGpuNumber())
        return logger


def _no_deprecation_notices(record: logging.LogRecord) -> bool:
    return 'deprecated' not in str(record.msg)


class _ExplainGpuNumber(logging.Filter):
    """mmengine logs its number of processes as "GPU number", also when there is no GPU."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and 'GPU number: ' in record.msg:
            record.msg = re.sub(r'GPU number: (\d+)',
                                r'GPU number: \1 (processes; no GPU here, the run uses the CPU)',
                                record.msg)
        return True
