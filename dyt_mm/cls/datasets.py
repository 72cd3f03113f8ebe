"""Data sets mmpretrain does not ship: VTAB-1K (SSF layout) and SVHN."""
import os.path as osp
from typing import List

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..models.dyt.registry import check_choice

# Task folder -> number of classes, in the SSF/NOAH release of VTAB-1K.
VTAB1K_TASKS = {
    'cifar': 100, 'caltech101': 102, 'dtd': 47, 'oxford_flowers102': 102,
    'oxford_iiit_pet': 37, 'svhn': 10, 'sun397': 397,
    'patch_camelyon': 2, 'eurosat': 10, 'resisc45': 45, 'diabetic_retinopathy': 5,
    'clevr_count': 8, 'clevr_dist': 6, 'dmlab': 6, 'kitti': 4, 'dsprites_loc': 16,
    'dsprites_ori': 16, 'smallnorb_azi': 18, 'smallnorb_ele': 9,
}
VTAB1K_SPLITS = {
    'train': 'train800val200.txt',  # what the paper trains on
    'train800': 'train800.txt',
    'val': 'val200.txt',
    'test': 'test.txt',
}


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One VTAB-1K task in the SSF layout.

    ``<data_root>/<task>/{train800val200,train800,val200,test}.txt`` hold
    lines ``relative/path.jpg label``; paths are relative to the task folder.

    Args:
        data_root: the folder holding the 19 task folders.
        task: a task folder name (see ``VTAB1K_TASKS``).
        split: ``train`` (train800val200), ``train800``, ``val`` (val200) or ``test``.
    """

    def __init__(self, data_root: str, task: str, split: str = 'train', **kwargs):
        check_choice('VTAB-1K task', task, tuple(VTAB1K_TASKS))
        check_choice('VTAB-1K split', split, tuple(VTAB1K_SPLITS))
        self.task, self.split = task, split
        num_classes = VTAB1K_TASKS[task]
        metainfo = dict(classes=tuple(str(i) for i in range(num_classes)))
        super().__init__(
            ann_file=osp.join(task, VTAB1K_SPLITS[split]), data_root=data_root,
            data_prefix=task, metainfo=metainfo, test_mode=split == 'test', **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'VTAB-1K list file not found: {self.ann_file}')
        num_classes = len(self.CLASSES)
        data_list = []
        with open(self.ann_file) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rel_path, label = line.rsplit(maxsplit=1)
                    label = int(label)
                except ValueError:
                    raise ValueError(f'{self.ann_file}:{line_no}: expected "path label", '
                                     f'got {line.strip()!r}') from None
                if not 0 <= label < num_classes:
                    raise ValueError(f'{self.ann_file}:{line_no}: label {label} is outside '
                                     f'0..{num_classes - 1} for task {self.task!r}')
                img_path = osp.join(self.img_prefix, rel_path)
                if not osp.isfile(img_path):
                    raise FileNotFoundError(f'image listed in {self.ann_file}:{line_no} '
                                            f'not found: {img_path}')
                data_list.append(dict(img_path=img_path, gt_label=label))
        return data_list


@DATASETS.register_module()
class SVHN(BaseDataset):
    """SVHN from the official ``train_32x32.mat`` / ``test_32x32.mat`` files.

    Labels ``10`` in the files mean digit 0 and are mapped to 0.
    """
    SPLIT_FILES = {'train': 'train_32x32.mat', 'test': 'test_32x32.mat',
                   'extra': 'extra_32x32.mat'}

    def __init__(self, data_root: str, split: str = 'train', **kwargs):
        check_choice('SVHN split', split, tuple(self.SPLIT_FILES))
        metainfo = dict(classes=tuple(str(i) for i in range(10)))
        super().__init__(ann_file=self.SPLIT_FILES[split], data_root=data_root,
                         metainfo=metainfo, test_mode=split == 'test', **kwargs)

    def load_data_list(self) -> List[dict]:
        from scipy.io import loadmat
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'SVHN file not found: {self.ann_file}')
        mat = loadmat(self.ann_file)
        images = np.ascontiguousarray(mat['X'].transpose(3, 0, 1, 2))  # N, H, W, C (RGB)
        labels = mat['y'].reshape(-1).astype(np.int64) % 10
        return [dict(img=img[..., ::-1].copy(), gt_label=int(label))  # BGR, like mmcv
                for img, label in zip(images, labels)]
