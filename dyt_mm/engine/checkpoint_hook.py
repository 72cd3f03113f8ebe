"""mmengine's CheckpointHook, with old checkpoints removed only once the new one is safe.

mmengine's hook removes the oldest checkpoint (``max_keep_ckpts``) and the
previous best one (``save_best``) *before* it writes the new file. With
``max_keep_ckpts=1`` a kill or a full disk during that write leaves no
complete checkpoint at all, and ``last_checkpoint`` names a file that is gone.
"""
import os.path as osp
from collections import deque

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..utils.checkpoint import atomic_write_text


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """Writes the new checkpoint, points ``last_checkpoint`` at it, then removes old ones.

    Takes the arguments of mmengine's ``CheckpointHook``; :class:`DyTRunner`
    puts it in the place of every ``CheckpointHook`` of a config. The file
    itself is published atomically by :meth:`DyTRunner.save_checkpoint`, and
    ``last_checkpoint`` is replaced atomically too, so a kill at any moment
    leaves a ``last_checkpoint`` that names a complete file.

    A kill after the write but before the removal leaves one checkpoint too
    many. The new checkpoint still lists it among its ``keep_ckpt_ids``, so a
    resumed run removes it (``CheckpointHook.before_train``).
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        repeated = self.max_keep_ckpts > 0 and self.keep_ckpt_ids and \
            self.keep_ckpt_ids[-1] == step  # the best-checkpoint path saves a step again
        if self.max_keep_ckpts > 0 and not repeated:
            kept = list(self.keep_ckpt_ids) + [step]
            outdated = kept[:-self.max_keep_ckpts]
            runner.message_hub.update_info('keep_ckpt_ids', kept)  # saved with the checkpoint
            self.keep_ckpt_ids = deque(kept[-self.max_keep_ckpts:], self.max_keep_ckpts)

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if outdated:
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        if not is_main_process():
            return
        atomic_write_text(self.last_ckpt, osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in outdated:
            self._remove(self.file_backend.join_path(self.out_dir,
                                                     self.filename_tmpl.format(old_step)))

    def _save_best_checkpoint(self, runner, metrics):
        # mmengine removes the previous best file first; let it write the new one first
        backend = self.file_backend
        self.file_backend = _RemovalsDeferred(backend)
        try:
            super()._save_best_checkpoint(runner, metrics)
            removals = self.file_backend.deferred
        finally:
            self.file_backend = backend
        current = {getattr(self, 'best_ckpt_path', None),
                   *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in removals:
            if path not in current:
                self._remove(path)

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)


class _RemovalsDeferred:
    """A file backend whose ``remove``/``rmtree`` are recorded, to be done later."""

    def __init__(self, backend):
        self.backend = backend
        self.deferred = []

    def remove(self, path):
        self.deferred.append(path)

    rmtree = remove

    def __getattr__(self, name):
        return getattr(self.backend, name)
