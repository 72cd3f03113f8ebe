"""Loading label maps with checks that name the offending file."""
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that refuses bad label maps with a clear error.

    mmseg would load them and fail later without naming the file (or, for a
    label map of the wrong size, crop image and labels apart silently):

    * a missing label map: ``FileNotFoundError`` naming it and its image;
    * a label map whose size differs from its image (or that is not a
      single-channel map): ``ValueError`` naming both files and both sizes;
    * a class index outside ``0 .. num_classes - 1`` that is not the ignore
      index (after ``reduce_zero_label``): ``ValueError`` naming the file and
      the values.

    Use it in place of ``LoadAnnotations`` anywhere in a pipeline (the size
    is compared with the image's original size, so it may follow a Resize).
    An image that does not come from a data set (mmseg's ``MMSegInferencer``
    keeps this transform in the test pipeline) passes through without labels.

    Args:
        num_classes: number of classes of the data set.
        ignore_index: the label that means "not labelled" (mmseg: 255).
        **kwargs: arguments of mmseg's ``LoadAnnotations``.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be an integer >= 1, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        img_path = results.get('img_path')
        if 'seg_map_path' not in results:
            if 'seg_fields' not in results:
                # Not a data set's sample but an image to predict: mmseg's inferencer drops
                # only a transform named LoadAnnotations from the test pipeline.
                return
            raise KeyError(f'the data set gives no label map for image {img_path}; set its '
                           "data_prefix=dict(seg_map_path=...)")
        seg_path = results['seg_map_path']
        if not fileio.exists(seg_path, backend_args=self.backend_args):
            raise FileNotFoundError(f'label map not found: {seg_path} (for image {img_path})')
        super()._load_seg_map(results)
        labels = results['gt_seg_map']
        image_size = tuple(results['ori_shape'][:2])
        if labels.shape != image_size:
            raise ValueError(f'label map {seg_path} is {_size(labels.shape)} but its image '
                             f'{img_path} is {_size(image_size)}; they must have the same size '
                             '(and the label map a single channel)')
        values = np.unique(labels)
        bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
        if bad.size:
            reduced = ' after reduce_zero_label' if results.get('reduce_zero_label') else ''
            raise ValueError(
                f'label map {seg_path} holds class index(es) {bad.tolist()}{reduced}; allowed '
                f'are 0..{self.num_classes - 1} and the ignore index {self.ignore_index}')


def _size(shape) -> str:
    return 'x'.join(str(s) for s in shape[:2]) + ('' if len(shape) == 2 else f'x{shape[2]}')
