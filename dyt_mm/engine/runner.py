"""A Runner that never runs code from a checkpoint, never loads one that does not fit,
and never leaves a half-written one behind."""
import glob
import logging
import os.path as osp
import re

import torch

from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint

from ..utils.checkpoint import (PARTIAL_SUFFIX, load_tensors, load_training_state, publish,
                                writing)
from ..utils.peft import DDP_PREFIX, fit_checkpoint
from .checkpoint_hook import SafeCheckpointHook


class ResumeError(RuntimeError):
    """``--resume`` found checkpoints it cannot continue from."""


@RUNNERS.register_module()
class DyTRunner(Runner):
    """mmengine's Runner with safe, strict and atomic checkpoints.

    * ``load_from`` / ``tools/test.py CKPT``: only tensors are read
      (:func:`dyt_mm.utils.checkpoint.load_tensors`) and they must fit the
      model exactly (:func:`dyt_mm.utils.peft.fit_checkpoint`; an adapter-only
      checkpoint may lack the frozen base, which comes from ``init_cfg``).
    * ``resume``: the run's own checkpoint is read with an allow-list of the
      types mmengine writes (:func:`~dyt_mm.utils.checkpoint.load_training_state`):
      optimizer, schedulers and message hub come back exactly, a foreign object
      is refused. Auto-resume in a work dir whose checkpoints cannot be found
      through ``last_checkpoint`` is an error, not a fresh start.
    * ``save_checkpoint`` writes ``NAME.partial``, syncs it and renames it, so a
      kill leaves the previous checkpoint or the new one, never a torn file; a
      write that fails (a full disk) is a
      :class:`~dyt_mm.utils.checkpoint.CheckpointWriteError` naming the file.
    * Every ``CheckpointHook`` of a config is a
      :class:`~dyt_mm.engine.checkpoint_hook.SafeCheckpointHook`: old
      checkpoints are removed only after the new one is complete and
      ``last_checkpoint`` names it, whatever ``max_keep_ckpts`` is.
    * The config is dumped beside the logs of this run (``log_dir``); the copy in
      ``work_dir`` is written by a new training run only, so testing a trained
      run (``tools/test.py`` builds no train loop) never rewrites its config.
    * ``console_log_level`` (a config key, e.g. ``'WARNING'``): the terminal
      shows only messages of this level and above, while the log file in the
      work dir keeps everything from ``log_level`` (the demos use it).
      mmengine's notices about its own deprecated APIs go to the file only.
    * On a machine without GPUs, mmengine's "GPU number" (its count of
      processes) is explained where it is logged.
    """

    _resuming = False

    def load_or_resume(self) -> None:
        if self._resume and self._load_from is None and not self._has_loaded:
            self._load_from = self._latest_checkpoint()
        super().load_or_resume()

    def _latest_checkpoint(self):
        latest = find_latest_checkpoint(self.work_dir)
        if latest and osp.isfile(latest):
            return latest
        saved = sorted(glob.glob(osp.join(glob.escape(self.work_dir), '*.pth')))
        partial = glob.glob(osp.join(glob.escape(self.work_dir), '*.pth' + PARTIAL_SUFFIX))
        if latest:
            raise ResumeError(f'cannot resume: {self.work_dir}/last_checkpoint names {latest}, '
                              'which does not exist; pass the checkpoint to continue from '
                              f'with --resume PATH{self._listing(saved)}')
        if saved or partial:
            raise ResumeError(
                f'cannot resume: {self.work_dir} has no last_checkpoint but holds checkpoint '
                f'files{self._listing(saved + partial)}; pass the one to continue from with '
                '--resume PATH (a .partial file is an interrupted write and cannot be resumed), '
                'or start afresh with --force')
        return None  # an empty work dir: nothing to resume, a first run

    @staticmethod
    def _listing(paths) -> str:
        return (' (' + ', '.join(osp.basename(p) for p in paths[:5]) + ')') if paths else ''

    def resume(self, filename, *args, **kwargs):
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename, map_location='cpu', strict=True,
                        revise_keys=DDP_PREFIX):
        """Load ``filename`` onto the model; always strict (see the class notes)."""
        read = load_training_state if self._resuming else load_tensors
        checkpoint = read(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        model.load_state_dict(fit_checkpoint(model, checkpoint, filename, revise_keys))
        self._has_loaded = True
        self.logger.info(f'Load checkpoint (tensors only, strict) from {filename}')
        return checkpoint

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        self._check_finite_weights(filename)
        if not osp.isdir(out_dir):  # a remote storage backend: its own semantics
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        # mmengine writes with a plain open(); we let it write NAME.partial and
        # publish the file with an atomic rename once it is on disk. A failed write
        # (a full disk) names the file and leaves no partial one.
        path = osp.join(out_dir, filename)
        with writing(path):
            super().save_checkpoint(out_dir, filename + PARTIAL_SUFFIX, *args, **kwargs)
            if self.rank == 0:
                publish(path)

    def register_hook(self, hook, priority=None) -> None:
        """Every mmengine ``CheckpointHook`` of a config becomes a :class:`SafeCheckpointHook`
        (old checkpoints are removed only once the new one is complete)."""
        if isinstance(hook, dict) and _is_mmengine_checkpoint_hook(hook.get('type')):
            hook = dict(hook, type=SafeCheckpointHook)
        super().register_hook(hook, priority)

    def _check_finite_weights(self, filename: str) -> None:
        model = self.model.module if is_model_wrapper(self.model) else self.model
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise FloatingPointError(
                f'not saving {filename}: the weights hold NaN or inf in {len(bad)} parameter(s) ({", ".join(bad[:5])}); training diverged '
                '(a learning rate too large?)')

    def dump_config(self) -> None:
        if self.rank != 0:
            return
        filename = osp.basename(self.cfg.filename) if self.cfg.filename else 'config.py'
        self.cfg.dump(osp.join(self.log_dir, filename))  # this run's own, beside its logs
        if self._train_loop is not None and not self._resume:
            # the copy that describes the run's checkpoints: written by a new training run
            # only, never by a test or a resume
            self.cfg.dump(osp.join(self.work_dir, filename))

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


def _is_mmengine_checkpoint_hook(hook_type) -> bool:
    if isinstance(hook_type, str):
        hook_type = HOOKS.get(hook_type)  # the default scope's registry, then mmengine's
    return hook_type is CheckpointHook


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
