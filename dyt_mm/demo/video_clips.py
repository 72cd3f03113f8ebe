"""Short real mp4 clips of a moving shape whose class is how it moves.

Every clip (24 frames, 3 s) shows one shape (disc, square or ring, random
colour) on a noisy background, gliding at constant speed. The class is the
motion:

    0 still, 1 horizontal, 2 vertical, 3 diagonal (either diagonal)

in a random direction along the axis. The motion wraps around the frame
edges, so in every class the shape's position in any single frame is uniform
over the frame: one frame alone says nothing about the class, only the
positions across frames do. Directions are random, and the classes are sets
of positions rather than paths, because the paper's temporal head reads the
frames as a set, blind to their order.

The clips are written with OpenCV (mp4v) and decode with both decord and
PyAV. The layout is mmaction's VideoDataset format::

    <root>/videos/{train,val}/<index>.mp4
    <root>/{train,val}_list_videos.txt     lines "<index>.mp4 <label>"
    <root>/classes.txt                     one class name per line
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

CLASSES = ('still', 'horizontal', 'vertical', 'diagonal')
# (dx, dy) axes per class, image coordinates; a diagonal clip takes one of the two at random
AXES = (((0, 0), ), ((1, 0), ), ((0, 1), ), ((1, 1), (1, -1)))
SHAPES = ('disc', 'square', 'ring')
_DONE = '.complete'


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    if shape == 'disc':
        return dx**2 + dy**2 <= radius**2
    if shape == 'square':
        return np.maximum(np.abs(dx), np.abs(dy)) <= radius
    distance = np.sqrt(dx**2 + dy**2)
    return (distance <= radius) & (distance >= radius - 1.6)


def make_clip(label: int, rng: np.random.Generator, num_frames: int = 24, size: int = 32,
              speed: float = 1.5) -> np.ndarray:
    """One clip of class ``label`` as ``(num_frames, size, size, 3)`` uint8 RGB."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f'label {label} is outside 0..{len(CLASSES) - 1} ({", ".join(CLASSES)})')
    axes = AXES[label]
    axis = np.array(axes[rng.integers(len(axes))], dtype=np.float64)
    velocity = axis / max(np.linalg.norm(axis), 1.0) * speed * rng.choice([-1, 1])
    start = rng.uniform(0, size, 2)
    shape, radius = rng.choice(SHAPES), rng.uniform(3.0, 5.0)
    colour = rng.uniform(140, 255, 3)
    background = rng.uniform(0, 90, 3)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        cx, cy = (start + velocity * t) % size
        # shortest offsets on the torus, so the shape wraps around the edges
        dx = (xs - cx + size / 2) % size - size / 2
        dy = (ys - cy + size / 2) % size - size / 2
        frame = background + rng.normal(0, 12, (size, size, 3))
        frame[_shape_mask(shape, dx, dy, radius)] = colour
        frames[t] = frame.clip(0, 255).astype(np.uint8)
    return frames


def write_clip(path: str, frames: np.ndarray, fps: int = 8) -> None:
    """Write ``(T, H, W, 3)`` uint8 RGB frames as an mp4 (MPEG-4 part 2) file."""
    import cv2
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write mp4v video {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
    writer.release()


def write_video_clips(root: str, num_train: int = 480, num_val: int = 120, num_frames: int = 24,
                      size: int = 32, seed: int = 0) -> Dict[str, int]:
    """Write both splits (balanced classes) under ``root``, once.

    A second call with the same settings reuses the files; other settings
    for a folder that already holds clips are an error, never a silent mix.
    Returns the number of clips per split.
    """
    settings = dict(classes=list(CLASSES), num_train=num_train, num_val=num_val,
                    num_frames=num_frames, size=size, seed=seed)
    marker = osp.join(root, _DONE)
    if osp.isfile(marker):
        with open(marker) as f:
            existing = json.load(f)
        if existing != settings:
            raise ValueError(f'{root} already holds clips written with {existing}, not '
                             f'{settings}; use another root or delete it')
        return dict(train=num_train, val=num_val)
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        folder = osp.join(root, 'videos', split)
        os.makedirs(folder, exist_ok=True)
        labels = np.arange(count) % len(CLASSES)
        rng.shuffle(labels)
        lines = []
        for index, label in enumerate(labels):
            name = f'{index:05d}.mp4'
            write_clip(osp.join(folder, name), make_clip(int(label), rng, num_frames, size))
            lines.append(f'{name} {label}')
        write_list(osp.join(root, f'{split}_list_videos.txt'), lines)
    write_list(osp.join(root, 'classes.txt'), CLASSES)
    with open(marker, 'w') as f:
        json.dump(settings, f)
    return dict(train=num_train, val=num_val)


def write_list(path: str, lines: Sequence[str]) -> None:
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))
