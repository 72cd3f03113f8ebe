"""Pipeline check that mmaction's frame samplers do not make."""
import logging

from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from ..models.dyt.registry import check_choice


@TRANSFORMS.register_module()
class CheckVideoLength(BaseTransform):
    """Refuse, or report, a video shorter than its frame sampler needs.

    mmaction's samplers never complain: ``SampleFrames`` loops a short video
    and ``UniformSample`` repeats frames. Put this transform right after the
    sampler; it reads the ``clip_len`` and ``frame_interval`` the sampler
    recorded. A clip of ``clip_len`` frames ``frame_interval`` apart needs
    ``(clip_len - 1) * frame_interval + 1`` frames (``clip_len`` for
    ``UniformSample``, which records no interval).

    Args:
        on_short: ``error`` (a ValueError naming the video) or ``warn`` (a
            warning naming it, once per video, then mmaction's own handling).
    """

    def __init__(self, on_short: str = 'error'):
        check_choice('on_short', on_short, ('error', 'warn'))
        self.on_short = on_short
        self._warned = set()

    def transform(self, results: dict) -> dict:
        total, clip_len = results['total_frames'], results['clip_len']
        interval = results.get('frame_interval')
        needed = clip_len if interval is None else (clip_len - 1) * interval + 1
        if total >= needed:
            return results
        filename = results['filename']
        message = (f'{filename} has {total} frames, fewer than the {needed} that its sampler '
                   f'needs (clip_len={clip_len}, frame_interval={interval})')
        if self.on_short == 'error':
            raise ValueError(f'{message}; use longer videos, a shorter clip or '
                             "CheckVideoLength(on_short='warn')")
        if filename not in self._warned:
            self._warned.add(filename)
            print_log(f'{message}; the sampler loops or repeats its frames', logger='current',
                      level=logging.WARNING)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(on_short={self.on_short!r})'
