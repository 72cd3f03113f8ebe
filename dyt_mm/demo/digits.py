"""scikit-learn's handwritten digits, written as image folders for mmpretrain.

1,797 real 8x8 digits ship inside scikit-learn, so this works offline. They
are split once (fixed seed) into two disjoint halves that play two domains:

* ``source``: upright digits, white on black -- used to pre-train a small ViT;
* ``target``: the other half (other writers), in a random ink colour on a
  grainy background -- the domain DyT adapts the frozen ViT to.

Each domain is written in mmpretrain's CustomDataset layout::

    <root>/<domain>/{train,val}/<digit>/<index>.png
"""
import os
import os.path as osp
from typing import Dict

import numpy as np
from PIL import Image

DOMAINS = ('source', 'target')
IMAGE_SIZE = 32
_DONE = '.complete'


def _to_image(digit: np.ndarray, domain: str, rng: np.random.Generator) -> Image.Image:
    grey = (digit / 16.0 * 255.0).astype(np.uint8)
    img = Image.fromarray(grey).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    rgb = np.stack([np.asarray(img)] * 3, axis=-1).astype(np.float32)
    if domain == 'target':
        rgb *= rng.uniform(0.4, 1.0, size=3)  # coloured ink
        rgb += rng.uniform(0, 60, size=(IMAGE_SIZE, IMAGE_SIZE, 1))  # grainy background
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def write_digits(root: str, seed: int = 0, val_fraction: float = 0.2) -> Dict[str, int]:
    """Write both domains under ``root`` (once; later calls reuse the files).

    Returns the number of images per ``<domain>/<split>``.
    """
    marker = osp.join(root, _DONE)
    if osp.isfile(marker):
        return _count(root)
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.images))
    halves = dict(zip(DOMAINS, np.array_split(order, 2)))
    for domain, indices in halves.items():
        num_val = int(round(len(indices) * val_fraction))
        for split, part in (('val', indices[:num_val]), ('train', indices[num_val:])):
            for i in part:
                folder = osp.join(root, domain, split, str(digits.target[i]))
                os.makedirs(folder, exist_ok=True)
                _to_image(digits.images[i], domain, rng).save(osp.join(folder, f'{i:04d}.png'))
    open(marker, 'w').close()
    return _count(root)


def _count(root: str) -> Dict[str, int]:
    counts = {}
    for domain in DOMAINS:
        for split in ('train', 'val'):
            folder = osp.join(root, domain, split)
            counts[f'{domain}/{split}'] = sum(len(files) for _, _, files in os.walk(folder))
    return counts
