"""mmaction's VideoDataset with the list checked before training starts."""
import os.path as osp
from typing import List

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.fileio import list_from_file


@DATASETS.register_module()
class CheckedVideoDataset(VideoDataset):
    """VideoDataset (same list format and options) that never trains on a bad entry.

    * ``num_classes`` is required: a line without a label, or with a label
      outside ``0..num_classes-1``, is a ``ValueError`` naming the list line
      and the video (mmaction would give ``-1`` or pass the label through);
    * every listed video must exist (``FileNotFoundError`` naming it and the
      list line); ``check_files=False`` skips this, e.g. for remote storage;
    * a video that fails to load later (undecodable, or too short for the
      sampler with :class:`~dyt_mm.video.CheckVideoLength`) raises an error
      naming the file; the decoders' own errors do not name it.
    """

    def __init__(self, ann_file: str, pipeline: list, num_classes: int,
                 check_files: bool = True, **kwargs):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be an integer >= 1, got {num_classes!r}')
        self.check_files = check_files
        super().__init__(ann_file, pipeline, num_classes=num_classes, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'video list file not found: {self.ann_file}')
        data_list = []
        for line_no, line in enumerate(list_from_file(self.ann_file), 1):
            if line.strip():
                data_list.append(self._parse_line(line.strip(), f'{self.ann_file}:{line_no}'))
        return data_list

    def _parse_line(self, line: str, where: str) -> dict:
        filename, *fields = line.split(self.delimiter)
        expected = '"video label [label ...]"' if self.multi_class else '"video label"'
        try:
            labels = [int(field) for field in fields]
        except ValueError:
            labels = []
        if not labels or (len(labels) > 1 and not self.multi_class):
            raise ValueError(f'{where}: expected {expected}, got {line!r}')
        outside = [label for label in labels if not 0 <= label < self.num_classes]
        if outside:
            raise ValueError(f'{where}: label {outside[0]} of {filename} is outside the '
                             f'{self.num_classes} classes (allowed: 0..{self.num_classes - 1})')
        if self.data_prefix['video'] is not None:
            filename = osp.join(self.data_prefix['video'], filename)
        if self.check_files and not osp.isfile(filename):
            raise FileNotFoundError(f'video listed in {where} not found: {filename}')
        return dict(filename=filename, label=labels if self.multi_class else labels[0])

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except Exception as err:
            filename = self.get_data_info(idx)['filename']
            if filename in str(err):
                raise  # already says which video (a missing file, a short clip)
            raise ValueError(f'cannot load video {filename}: {type(err).__name__}: {err}') from err
