"""Coloured shapes on textured backgrounds, written as segmentation sets in the ADE20K layout.

Every image holds 1-3 shapes (disc, square, triangle, cross), each class in
its own hue with a random jitter, at a random size, rotation and position.
Two domains share the classes and differ in the background:

* ``source``: a flat muted colour with noise -- used to pre-train a small
  ViT segmenter (the stand-in for a pre-trained checkpoint);
* ``target``: random stripes, checkers or smooth blobs -- the domain DyT
  adapts the frozen ViT to.

Files, per domain::

    <root>/<domain>/images/{training,validation}/shapes_<split>_<index>.jpg
    <root>/<domain>/annotations/{training,validation}/shapes_<split>_<index>.png

Label maps follow ADE20K: ``k`` is ``CLASSES[k - 1]`` and ``0`` means "not
labelled"; here 0 marks a thin band along every boundary, where anti-aliasing
and JPEG blur make the class ambiguous. With ``reduce_zero_label=True`` (as
for ADE20K) the band is ignored and the classes become ``0 .. 4``. Image
sizes vary (64-96 px a side), as ADE20K's do.
"""
import math
import os
import os.path as osp
from typing import Dict

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('background', 'disc', 'square', 'triangle', 'cross')
PALETTE = [[120, 120, 120], [220, 20, 60], [0, 128, 255], [255, 200, 0], [60, 180, 75]]
# the hue of each shape class (RGB), jittered per shape
SHAPE_COLOURS = {'disc': (210, 40, 40), 'square': (40, 70, 220), 'triangle': (230, 200, 30),
                 'cross': (40, 190, 60)}
DOMAINS = ('source', 'target')
SPLITS = {'training': 320, 'validation': 80}
SIZE_RANGE = (64, 96)
_DONE = '.complete'


def shape_background(rng: np.random.Generator, height: int, width: int, domain: str) -> np.ndarray:
    """A muted (H, W, 3) float background: flat (source) or textured (target), plus noise."""
    grey = rng.uniform(60, 200)
    colours = grey + rng.uniform(-45, 45, size=(2, 3))  # low saturation: no shape hue
    if domain == 'source':
        weight = np.ones((height, width), np.float32)
    else:
        y, x = np.mgrid[:height, :width].astype(np.float32)
        kind = rng.integers(3)
        if kind == 0:  # stripes at a random angle and period
            angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
            phase = 2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period
            weight = 0.5 + 0.5 * np.sin(phase)
        elif kind == 1:  # checkers
            cell = rng.integers(4, 12)
            weight = ((x // cell + y // cell) % 2).astype(np.float32)
        else:  # smooth blobs: coarse noise, bilinearly upsampled
            coarse = Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8))
            weight = np.asarray(coarse.resize((width, height), Image.BILINEAR), np.float32) / 255
    image = weight[..., None] * colours[0] + (1 - weight[..., None]) * colours[1]
    return image + rng.normal(0, 8, size=image.shape)


def shape_polygon(name: str, cx: float, cy: float, radius: float, angle: float):
    """Vertices of a square, triangle or cross centred on (cx, cy), rotated by ``angle``."""
    if name == 'square':
        points = [(radius * 0.75 * a, radius * 0.75 * b) for a, b in ((1, 1), (-1, 1), (-1, -1),
                                                                      (1, -1))]
    elif name == 'triangle':
        points = [(radius * math.cos(t), radius * math.sin(t))
                  for t in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3,
                            math.pi / 2 + 4 * math.pi / 3)]
    else:  # cross: a plus sign with arms a third as wide as it is long
        a, b = radius, radius / 3
        points = [(b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a), (b, -a),
                  (b, -b), (a, -b), (a, b), (b, b)]
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + px * cos - py * sin, cy + px * sin + py * cos) for px, py in points]


def _boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another class."""
    edge = np.zeros(labels.shape, bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


def make_sample(rng: np.random.Generator, domain: str = 'target'):
    """One ``(image (H, W, 3) uint8 RGB, label map (H, W) uint8)`` pair of ``domain``."""
    height, width = (int(s) for s in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, size=2))
    image = shape_background(rng, height, width, domain).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(image)
    label_map = Image.new('L', (width, height), CLASSES.index('background') + 1)
    draw_image, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label_map)
    for _ in range(rng.integers(1, 4)):
        label = int(rng.integers(2, len(CLASSES) + 1))
        name = CLASSES[label - 1]
        radius, angle = rng.uniform(10, 22), rng.uniform(0, 2 * math.pi)
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        colour = np.array(SHAPE_COLOURS[name]) + rng.uniform(-30, 30, size=3)
        fill = tuple(int(c) for c in colour.clip(0, 255))
        for draw, value in ((draw_image, fill), (draw_label, label)):
            if name == 'disc':
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=value)
            else:
                draw.polygon(shape_polygon(name, cx, cy, radius, angle), fill=value)
    labels = np.asarray(label_map).copy()
    labels[_boundary(labels)] = 0
    return np.asarray(image), labels


def write_seg_shapes(root: str, seed: int = 0,
                     splits: Dict[str, int] = SPLITS) -> Dict[str, int]:
    """Write both domains under ``root`` (once; later calls reuse the files).

    ``splits``: images per split and domain. Returns the number of images per
    ``<domain>/<split>``.
    """
    if not osp.isfile(osp.join(root, _DONE)):
        rng = np.random.default_rng(seed)
        for domain in DOMAINS:
            for split, count in splits.items():
                image_dir = osp.join(root, domain, 'images', split)
                label_dir = osp.join(root, domain, 'annotations', split)
                os.makedirs(image_dir, exist_ok=True)
                os.makedirs(label_dir, exist_ok=True)
                for index in range(count):
                    image, labels = make_sample(rng, domain)
                    name = f'shapes_{split}_{index:05d}'
                    Image.fromarray(image).save(osp.join(image_dir, name + '.jpg'), quality=95)
                    Image.fromarray(labels).save(osp.join(label_dir, name + '.png'))
        open(osp.join(root, _DONE), 'w').close()
    return {f'{domain}/{split}': len(os.listdir(osp.join(root, domain, 'images', split)))
            for domain in DOMAINS for split in splits}
