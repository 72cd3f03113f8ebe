"""mmdet's COCO data set with checks that name the offending file and annotation."""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

# Boxes may stick out of their image by this much (pixels): rounding in annotation tools.
BOX_TOLERANCE = 1.0


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that refuses bad annotations with a clear error.

    mmdet skips such annotations silently (or, for a box partly outside its
    image, trains on it); here loading the data set raises ``ValueError``
    naming the annotation file, the annotation id and the image file:

    * a box that lies outside its image (by more than ``BOX_TOLERANCE``
      pixels), or whose width or height is negative;
    * a ``category_id`` that is not one of the file's ``categories``.

    Categories that exist in the file but are not among the config's
    ``metainfo['classes']`` are still skipped, as in mmdet (that is how a
    config selects classes).

    An image that fails in the pipeline (empty, undecodable) is an error
    naming it: mmcv's ``LoadImageFromFile``, which the configs keep for
    mmdet's inferencer, lets OpenCV's ``!buf.empty()`` through without it.
    """

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except Exception as err:
            img_path = self.get_data_info(idx)['img_path']
            if isinstance(err, (ValueError, FileNotFoundError)) and img_path in str(err):
                raise  # already clear
            raise ValueError(f'image {img_path} failed in the data pipeline '
                             f'({type(err).__name__}: {str(err).strip()[:200]})') from err

    def parse_data_info(self, raw_data_info: dict):
        img_info = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            self._check_annotation(ann, img_info)
        return super().parse_data_info(raw_data_info)

    def _check_annotation(self, ann: dict, img_info: dict) -> None:
        where = (f"{self.ann_file}: annotation id {ann.get('id')} of image "
                 f"{img_info['file_name']!r} (image id {img_info['img_id']})")
        if ann['category_id'] not in self.coco.cats:
            raise ValueError(f"{where} has category_id {ann['category_id']!r}, which is not "
                             f'one of the categories of the file: {sorted(self.coco.cats)}')
        x, y, w, h = ann['bbox']
        width, height = img_info['width'], img_info['height']
        if (w < 0 or h < 0 or x < -BOX_TOLERANCE or y < -BOX_TOLERANCE
                or x + w > width + BOX_TOLERANCE or y + h > height + BOX_TOLERANCE):
            raise ValueError(f'{where} has bbox [x, y, w, h] = {ann["bbox"]}, outside the '
                             f'{width}x{height} image; a box must lie within [0, {width}] x '
                             f'[0, {height}] with w, h >= 0')
