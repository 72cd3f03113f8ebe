"""Image loading that names the file it cannot read (every toolbox layer uses it).

mmcv's ``LoadImageFromFile`` lets the decoder's error through: a zero-byte or
corrupt file gives ``cv2.error ... !buf.empty()`` with no file name, deep in a
data-loader worker. Registered in mmengine's root ``TRANSFORMS``, so mmpretrain,
mmseg and mmaction pipelines can all name it.
"""
import os.path as osp
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadCheckedImage(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the image: missing, empty or undecodable."""

    def transform(self, results: dict) -> Optional[dict]:
        if 'img_path' not in results and 'img' in results:
            # already loaded: mmpretrain's inferencer reads the image itself and removes only
            # a step named LoadImageFromFile from the test pipeline
            return results
        filename = results['img_path']
        if not self.ignore_empty and osp.isfile(filename) and osp.getsize(filename) == 0:
            raise ValueError(f'image file {filename} is empty (0 bytes)')
        try:
            return super().transform(results)
        except FileNotFoundError:
            raise FileNotFoundError(f'image file not found: {filename}') from None
        except Exception as err:  # cv2/PIL/turbojpeg errors, or mmcv's "img is None" assert
            raise ValueError(f'image file {filename} could not be decoded as an image '
                             f'({type(err).__name__}: {str(err).strip()[:200]})') from err
