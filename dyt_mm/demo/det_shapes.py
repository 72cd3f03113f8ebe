"""Coloured shapes as an instance-segmentation set in the COCO format.

The shapes and backgrounds of :mod:`dyt_mm.demo.seg_shapes` (disc, square,
triangle, cross; flat *source* backgrounds, textured *target* ones), now as
instances: every image holds 1-4 shapes that do not overlap, each with its box
and polygon mask, so that the masks are exact (no occlusion). Files, per domain::

    <root>/<domain>/{train,val}/<index>.jpg
    <root>/<domain>/annotations/instances_{train,val}.json

The JSON files are COCO's: ``images`` (id, file_name, width, height),
``annotations`` (id, image_id, category_id, bbox ``[x, y, w, h]``, area,
iscrowd, segmentation as one polygon) and ``categories`` (ids from 1).
Image sides vary (96-128 px).
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List

import numpy as np
from PIL import Image, ImageDraw

from .seg_shapes import DOMAINS, SHAPE_COLOURS, shape_background, shape_polygon

CLASSES = ('disc', 'square', 'triangle', 'cross')
SPLITS = {'train': 320, 'val': 80}
SIZE_RANGE = (96, 128)
RADIUS_RANGE = (10, 22)
DISC_VERTICES = 32
_DONE = '.complete'


def _outline(name: str, cx: float, cy: float, radius: float, angle: float) -> List[tuple]:
    if name == 'disc':
        return [(cx + radius * math.cos(t), cy + radius * math.sin(t))
                for t in np.linspace(0, 2 * math.pi, DISC_VERTICES, endpoint=False)]
    return shape_polygon(name, cx, cy, radius, angle)


def _polygon_area(points: List[tuple]) -> float:
    x, y = np.array(points).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def make_sample(rng: np.random.Generator, domain: str = 'target', max_tries: int = 50):
    """One image (H, W, 3) uint8 RGB and its instances: ``(class index, polygon)`` pairs."""
    height, width = (int(s) for s in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, size=2))
    background = shape_background(rng, height, width, domain)
    image = Image.fromarray(background.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    placed, instances = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _ in range(max_tries):  # a free spot: circles around the shapes do not meet
            radius = rng.uniform(*RADIUS_RANGE)
            cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, radius))
        label = int(rng.integers(len(CLASSES)))
        name = CLASSES[label]
        colour = np.array(SHAPE_COLOURS[name]) + rng.uniform(-30, 30, size=3)
        points = _outline(name, cx, cy, radius, rng.uniform(0, 2 * math.pi))
        draw.polygon(points, fill=tuple(int(c) for c in colour.clip(0, 255)))
        instances.append((label, points))
    return np.asarray(image), instances


def coco_annotations(samples: List[tuple]) -> Dict:
    """The COCO dict of ``(file_name, height, width, instances)`` samples."""
    images, annotations = [], []
    for image_id, (file_name, height, width, instances) in enumerate(samples, start=1):
        images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
        for label, points in instances:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            x0, y0 = max(min(xs), 0.0), max(min(ys), 0.0)
            x1, y1 = min(max(xs), width), min(max(ys), height)
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                bbox=[round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                area=round(_polygon_area(points), 2), iscrowd=0,
                segmentation=[[round(v, 2) for p in points for v in p]]))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def write_det_shapes(root: str, seed: int = 0,
                     splits: Dict[str, int] = SPLITS) -> Dict[str, int]:
    """Write both domains under ``root`` (once; later calls reuse the files).

    ``splits``: images per split and domain. Returns the number of instances
    per ``<domain>/<split>``.
    """
    if not osp.isfile(osp.join(root, _DONE)):
        rng = np.random.default_rng(seed)
        for domain in DOMAINS:
            os.makedirs(osp.join(root, domain, 'annotations'), exist_ok=True)
            for split, count in splits.items():
                os.makedirs(osp.join(root, domain, split), exist_ok=True)
                samples = []
                for index in range(count):
                    image, instances = make_sample(rng, domain)
                    file_name = f'{index:05d}.jpg'
                    Image.fromarray(image).save(osp.join(root, domain, split, file_name),
                                                quality=95)
                    samples.append((file_name, *image.shape[:2], instances))
                with open(osp.join(root, domain, 'annotations', f'instances_{split}.json'),
                          'w') as f:
                    json.dump(coco_annotations(samples), f)
        open(osp.join(root, _DONE), 'w').close()
    counts = {}
    for domain in DOMAINS:
        for split in splits:
            with open(osp.join(root, domain, 'annotations', f'instances_{split}.json')) as f:
                counts[f'{domain}/{split}'] = len(json.load(f)['annotations'])
    return counts
