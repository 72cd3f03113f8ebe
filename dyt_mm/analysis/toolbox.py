"""The little that differs between the three toolboxes, for the analysis tools.

Everything else goes through the shared contract: a model holds exactly one
:class:`~dyt_mm.models.backbone_base.DyTBackboneBase` (with one
:class:`~dyt_mm.DyTViT`), whose ``example_input(batch_size)`` is a backbone
input of native size: ``(B, C, H, W)`` for images and crops, ``(B, C, T, H, W)``
for clips, whose frames the backbone folds into the ViT's batch.
"""
import importlib
from contextlib import contextmanager
from typing import List, NamedTuple

import torch
from mmengine.registry import DefaultScope, init_default_scope

from ..models.dyt.registry import check_choice


class Toolbox(NamedTuple):
    # the dyt_mm layer that registers the DyT modules into this toolbox
    layer: str
    # tensor-mode forward of the whole model: extra keyword arguments
    tensor_kwargs: dict
    # how the data preprocessor stacks backbone inputs: a clip gets a views axis
    views_axis: bool
    # data info a test pipeline needs to load one file given on the command line
    file_key: str
    file_info: dict
    # the evaluator's headline metric in the demo configs and the paper's tables
    metric: str
    # what FLOPs count: the whole model ('model'), or backbone + neck ('features', as the
    # paper's detection table)
    counted: str = 'model'


TOOLBOXES = {
    'mmpretrain': Toolbox('dyt_mm.cls', {}, False, 'img_path', {}, 'accuracy/top1'),
    'mmseg': Toolbox('dyt_mm.seg', {}, False, 'img_path',
                     dict(reduce_zero_label=False, seg_fields=[]), 'mIoU'),
    # mmaction's tensor mode stops after the backbone unless asked for the head
    'mmaction': Toolbox('dyt_mm.video', dict(stage='head'), True, 'filename',
                        dict(label=-1, start_index=0, modality='RGB'), 'acc/top1'),
    'mmdet': Toolbox('dyt_mm.det', {}, False, 'img_path', {}, 'coco/bbox_mAP', 'features'),
}


IMAGE_LOADERS = ('LoadImageFromFile', 'LoadCheckedImage')


def loads_annotations(transform: dict) -> bool:
    """mmseg's LoadAnnotations and variants of it (``Load...Annotations``)."""
    return transform['type'].startswith('Load') and transform['type'].endswith('Annotations')


def scope_of(cfg) -> str:
    scope = cfg.get('default_scope', 'mmpretrain')
    check_choice('default_scope', scope, tuple(TOOLBOXES))
    return scope


def toolbox_of(cfg) -> Toolbox:
    return TOOLBOXES[scope_of(cfg)]


def import_layer(scope: str) -> None:
    """Import the dyt_mm layer that registers the DyT modules into ``scope``'s toolbox."""
    check_choice('default_scope', scope, tuple(TOOLBOXES))
    importlib.import_module(TOOLBOXES[scope].layer)


def init_default_scope_of(cfg) -> None:
    """Import the toolbox layer the config's scope needs and make it the default scope."""
    scope = scope_of(cfg)
    import_layer(scope)
    init_default_scope(scope)


@contextmanager
def scope_of_config(cfg):
    """The config's scope (its layer imported) as the default scope inside this block only."""
    scope = scope_of(cfg)
    import_layer(scope)
    with DefaultScope.overwrite_default_scope(scope):
        yield


def model_input(toolbox: Toolbox, backbone_input: torch.Tensor) -> torch.Tensor:
    """The whole model's input for a batch of backbone inputs (one view each)."""
    return backbone_input.unsqueeze(1) if toolbox.views_axis else backbone_input


def single_file_pipeline(toolbox: Toolbox, pipeline: List[dict]) -> List[dict]:
    """The test pipeline for one file: annotations dropped, image loading ensured."""
    pipeline = [t for t in pipeline if not loads_annotations(t)]
    # mmpretrain's array data sets (CIFAR) have no loading step in their pipelines
    if toolbox.file_key == 'img_path' and pipeline[0]['type'] not in IMAGE_LOADERS:
        pipeline.insert(0, dict(type='LoadCheckedImage'))
    return pipeline
