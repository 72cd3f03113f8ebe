"""A stand-in for ``mmcv._ext``, the compiled kernels that mmcv-lite does not ship.

mmcv's ops are Python wrappers (``nms``, ``batched_nms``, ``RoIAlign``, ...)
around kernels in ``mmcv._ext``; every wrapper module loads that extension at
import time, so on mmcv-lite ``import mmdet.models`` fails on its first
``from mmcv.ops import batched_nms``. This module takes the extension's
place (see :mod:`dyt_mm.compat`), so that mmcv's own wrappers run unchanged:

* the kernels a Mask R-CNN runs in training and test are computed by
  torchvision's: ``nms`` (behind ``nms`` and ``batched_nms``) and
  ``roi_align_forward`` / ``roi_align_backward`` (behind ``roi_align`` and
  ``RoIAlign``, average pooling);
* every other kernel is still missing: calling it raises
  ``ModuleNotFoundError`` naming it (importing a wrapper that uses it works,
  so toolboxes import whole).
"""
import importlib.machinery
import types

import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision)
from torchvision.ops import nms as tv_nms

MISSING_MESSAGE = ("mmcv.ops kernel '{}' needs mmcv's compiled ops, which mmcv-lite does not "
                   'ship (only nms and roi_align are served here, by torchvision); install full '
                   'mmcv (see docs/environment.md) to use it.')


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        offset: int = 0) -> torch.Tensor:
    """Indices of the kept boxes, by decreasing score (mmcv's kernel contract).

    ``offset=1`` is mmcv's legacy box convention (width ``x2 - x1 + 1``);
    moving ``x2, y2`` out by one pixel gives torchvision the same areas and
    overlaps.
    """
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:4] + offset], dim=1)
    return tv_nms(boxes, scores, float(iou_threshold))


def _check_avg_pool(pool_mode: int) -> None:
    if pool_mode != 1:
        raise ModuleNotFoundError(MISSING_MESSAGE.format('roi_align with pool_mode="max"'))


def roi_align_forward(input: torch.Tensor, rois: torch.Tensor, output: torch.Tensor,
                      argmax_y: torch.Tensor, argmax_x: torch.Tensor, aligned_height: int,
                      aligned_width: int, spatial_scale: float, sampling_ratio: int,
                      pool_mode: int, aligned: bool) -> None:
    """Fills ``output`` in place, as the compiled kernel does (rois: ``(n, 5)``)."""
    _check_avg_pool(pool_mode)
    output.copy_(torch.ops.torchvision.roi_align(input, rois, spatial_scale, aligned_height,
                                                 aligned_width, sampling_ratio, aligned))


def roi_align_backward(grad_output: torch.Tensor, rois: torch.Tensor, argmax_y: torch.Tensor,
                       argmax_x: torch.Tensor, grad_input: torch.Tensor, aligned_height: int,
                       aligned_width: int, spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    """Fills ``grad_input`` in place with the gradient of :func:`roi_align_forward`."""
    _check_avg_pool(pool_mode)
    grad_input.copy_(torch.ops.torchvision._roi_align_backward(
        grad_output, rois, spatial_scale, aligned_height, aligned_width, *grad_input.shape,
        sampling_ratio, aligned))


SERVED = {f.__name__: f for f in (nms, roi_align_forward, roi_align_backward)}


class MmcvExtStandIn(types.ModuleType):
    """``mmcv._ext``: the kernels in :data:`SERVED`; any other name is a kernel that raises."""

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        if name in SERVED:
            return SERVED[name]

        def missing_kernel(*args, **kwargs):
            raise ModuleNotFoundError(MISSING_MESSAGE.format(name))

        missing_kernel.__name__ = name
        return missing_kernel


def stand_in() -> MmcvExtStandIn:
    module = MmcvExtStandIn('mmcv._ext', __doc__)
    # A spec without a loader: mmengine's ``mmcv_full_available()`` (which looks for a
    # loader of mmcv._ext) still answers False, as it should.
    module.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)
    return module
