"""Data loaders built from a config outside the Runner's loops."""
import copy
from typing import Optional

from mmengine.config import Config


def calibration_loader(cfg: Config, num_samples: Optional[int] = None):
    """The config's training split through its *test* pipeline, in order, unsharded.

    What threshold calibration should see: the training images as the model
    sees them at test (no augmentation), the first ``num_samples`` of them (all
    if None), the same on every process so that all ranks get the same offsets.
    """
    from mmengine.registry import DATASETS
    from mmengine.runner import Runner
    from torch.utils.data import SequentialSampler
    if num_samples is not None and num_samples < 1:
        raise ValueError(f'number of calibration samples must be >= 1, got {num_samples}')
    for loader in ('train_dataloader', 'test_dataloader'):
        if not cfg.get(loader):
            raise ValueError(f'calibration on the training split needs the config\'s {loader}')
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    dataset_cfg = loader_cfg.dataset
    while 'pipeline' not in dataset_cfg and 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg.dataset  # a repeat/class-balance wrapper: its one data set
    dataset_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    if num_samples is not None:
        dataset_cfg.indices = num_samples
    dataset = DATASETS.build(dataset_cfg)
    loader_cfg.update(dataset=dataset, sampler=SequentialSampler(dataset), num_workers=0,
                      persistent_workers=False,
                      batch_size=cfg.test_dataloader.get('batch_size', 1))
    loader_cfg.pop('batch_sampler', None)
    return Runner.build_dataloader(loader_cfg)
