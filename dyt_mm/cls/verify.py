"""Checks of a classification folder with list files (``path label`` lines), VTAB-1K first.

The logic behind ``tools/dataset_converters/verify_dataset.py``. Every folder
holding ``*.txt`` list files (the root's sub-folders, or the root itself) is a
"task"; one named as a VTAB-1K task folder is checked as VTAB-1K. Each list
file is checked for:

* lines that are not ``path label``, and labels outside the class count;
* missing, zero-byte and unreadable images (decoded with PIL);
* VTAB-1K only: the split sizes of :mod:`.vtab1k_splits`, and
  train800val200 = train800 + val200;
* images that appear (byte for byte, by SHA-256) both in a training list and
  in a test list (a list file whose name contains ``test``);
* when the folder has the converter's ``manifest.json``: counts and hashes.
"""
import glob
import hashlib
import io
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Sequence

from PIL import Image

from .datasets import VTAB1K_TASKS
from .vtab1k import (LIST_FILES, MANIFEST, TASK_BY_FOLDER, canonical_size, load_manifest,
                     read_list_file)


class SplitRow(NamedTuple):
    task: str
    split: str
    images: int
    expected: Optional[int]
    classes_seen: int
    problems: int


class ImageFacts(NamedTuple):
    sha256: Optional[str]
    problem: Optional[str]


def inspect_image(path: str, decode: bool) -> ImageFacts:
    if not osp.isfile(path):
        return ImageFacts(None, 'image not found')
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        return ImageFacts(None, 'zero-byte image')
    if decode:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except Exception as error:  # PIL raises many types for a broken file
            return ImageFacts(hashlib.sha256(data).hexdigest(),
                              f'unreadable image ({type(error).__name__}: {error})')
    return ImageFacts(hashlib.sha256(data).hexdigest(), None)


def task_folders(root: str, tasks: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Task name -> folder holding its list files."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'data folder not found: {root}')
    if tasks:
        folders = {t: osp.join(root, t) for t in tasks}
        absent = [t for t, f in folders.items() if not osp.isdir(f)]
        if absent:
            raise FileNotFoundError(f'{root} has no task folder {", ".join(absent)}')
        return folders
    subfolders = sorted(e.name for e in os.scandir(root)
                        if e.is_dir() and glob.glob(osp.join(glob.escape(e.path), '*.txt')))
    if subfolders:
        return {d: osp.join(root, d) for d in subfolders}
    if glob.glob(osp.join(glob.escape(root), '*.txt')):
        return {osp.basename(osp.normpath(root)): root}
    raise FileNotFoundError(f'{root} holds no list files (*.txt), neither itself nor in its '
                            'sub-folders')


def class_count(folder: str, num_classes: Optional[int], vtab_task: Optional[str]) -> Optional[int]:
    if vtab_task is not None:
        return VTAB1K_TASKS[vtab_task]
    if num_classes is not None:
        return num_classes
    for name in ('classes.txt', osp.join('meta', 'classes.txt')):
        path = osp.join(folder, name)
        if osp.isfile(path):
            with open(path) as f:
                return sum(1 for line in f if line.strip())
    return None


class Verifier:
    """Collects the rows of the table and the problems, each naming its file."""

    def __init__(self, decode: bool = True, progress=None):
        self.decode = decode
        self.progress = progress
        self.rows: List[SplitRow] = []
        self.problems: List[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def check_task(self, task: str, folder: str, num_classes: Optional[int],
                   vtab: bool, manifest: Optional[Dict]) -> None:
        if vtab:
            list_files = {s: osp.join(folder, n) for s, n in LIST_FILES.items()}
            for split in ('train800val200', 'test'):
                if not osp.isfile(list_files[split]):
                    self.problem(f'{list_files[split]}: list file missing')
            list_files = {s: p for s, p in list_files.items() if osp.isfile(p)}
        else:
            list_files = {osp.splitext(osp.basename(p))[0]: p
                          for p in sorted(glob.glob(osp.join(glob.escape(folder), '*.txt')))
                          if osp.basename(p) != 'classes.txt'}
        classes = class_count(folder, num_classes, task if vtab else None)
        hashes: Dict[str, Dict[str, str]] = {}  # split -> sha256 -> path
        listed: Dict[str, Counter] = {}
        for split, list_path in list_files.items():
            if self.progress is not None:
                self.progress(f'[{task}] {split}')
            before = len(self.problems)
            paths, labels, seen = [], set(), {}
            for entry in read_list_file(list_path):
                where = f'{list_path}:{entry.line_no}'
                if entry.label is None:
                    self.problem(f'{where}: expected "path label", got {entry.text!r}')
                    continue
                if entry.label < 0 or (classes is not None and entry.label >= classes):
                    allowed = f'0..{classes - 1}' if classes is not None else '>= 0'
                    self.problem(f'{where}: label {entry.label} of {entry.path} is outside '
                                 f'{allowed}')
                labels.add(entry.label)
                paths.append(entry.path)
                image = osp.join(folder, entry.path)
                facts = inspect_image(image, self.decode)
                if facts.problem:
                    self.problem(f'{image} ({where}): {facts.problem}')
                if facts.sha256:
                    seen.setdefault(facts.sha256, image)
                    if manifest is not None:
                        expected = manifest.get(split, {}).get('files', {}).get(entry.path)
                        if expected is not None and expected != facts.sha256:
                            self.problem(f'{image}: SHA-256 differs from {MANIFEST}')
            hashes[split] = seen
            listed[split] = Counter(paths)
            expected = canonical_size(task, split) if vtab else None
            if expected is not None and len(paths) != expected:
                self.problem(f'{list_path}: {len(paths)} images, VTAB-1K has {expected}')
            if manifest is not None and split in manifest and \
                    manifest[split]['count'] != len(paths):
                self.problem(f'{list_path}: {len(paths)} images, {MANIFEST} says '
                             f'{manifest[split]["count"]}')
            self.rows.append(SplitRow(task, split, len(paths), expected, len(labels),
                                      len(self.problems) - before))
        if vtab and {'train800', 'val200', 'train800val200'} <= set(listed) and \
                listed['train800'] + listed['val200'] != listed['train800val200']:
            self.problem(f'{list_files["train800val200"]}: is not train800.txt + val200.txt')
        self.check_train_test_overlap(task, hashes)

    def check_train_test_overlap(self, task: str, hashes: Dict[str, Dict[str, str]]) -> None:
        """Report each image of a test list that a training list holds too (counted in the
        test list's row)."""
        test = {s: h for s, h in hashes.items() if 'test' in s}
        train = {s: h for s, h in hashes.items() if 'test' not in s}
        for test_split, test_hashes in test.items():
            found = 0
            for digest, test_image in test_hashes.items():
                train_image = next((h[digest] for h in train.values() if digest in h), None)
                if train_image is not None:
                    found += 1
                    self.problem(f'{train_image} (training) and {test_image} (test) are the '
                                 f'same image (SHA-256 {digest[:12]})')
            if found:
                i = next(i for i, row in enumerate(self.rows)
                         if (row.task, row.split) == (task, test_split))
                self.rows[i] = self.rows[i]._replace(problems=self.rows[i].problems + found)


def verify_folder(root: str, tasks: Optional[Sequence[str]] = None,
                  num_classes: Optional[int] = None, decode: bool = True,
                  progress=None) -> Verifier:
    """Check the folder (see the module docstring); returns the :class:`Verifier` with
    ``rows`` (one per list file) and ``problems`` (empty if all is well)."""
    folders = task_folders(root, tasks)
    manifest_path = osp.join(root, MANIFEST)
    manifest = load_manifest(manifest_path)['tasks'] if osp.isfile(manifest_path) else {}
    verifier = Verifier(decode, progress)
    for task, folder in folders.items():
        # a folder named as a VTAB-1K task is checked as one; any other generically
        verifier.check_task(task, folder, num_classes, task in TASK_BY_FOLDER,
                            manifest.get(task) if manifest else None)
    return verifier


def verification_table(verifier: Verifier) -> List[List[str]]:
    table = [['task', 'split', 'images', 'expected', 'labels seen', 'status']]
    for row in verifier.rows:
        expected = '-' if row.expected is None else str(row.expected)
        status = 'ok' if row.problems == 0 else f'{row.problems} problem(s)'
        table.append([row.task, row.split, str(row.images), expected, str(row.classes_seen),
                      status])
    return table
