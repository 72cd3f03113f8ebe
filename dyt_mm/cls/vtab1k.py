"""VTAB-1K as the paper reports it, and its preparation from the SSF/NOAH release.

The 19 tasks in the column order of the paper's Table 3, their groups, the
config names of ``configs/vtab1k/``; list files; the converter behind
``tools/dataset_converters/vtab1k.py`` and the manifest it writes (per task,
per split: the count and the SHA-256 of every file).
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..utils.checkpoint import atomic_write_text
from .vtab1k_splits import FIXED_SPLIT_SIZES, TEST_SIZES


class Task(NamedTuple):
    folder: str  # the SSF/NOAH task folder, VTAB1k's ``task``
    column: str  # the paper's Table-3 column
    config: str  # the suffix of configs/vtab1k/*_vtab1k-<config>.py
    group: str


TASKS: Tuple[Task, ...] = tuple(Task(*row) for row in (
    ('cifar', 'CIFAR-100', 'cifar100', 'Natural'),
    ('caltech101', 'Caltech101', 'caltech101', 'Natural'),
    ('dtd', 'DTD', 'dtd', 'Natural'),
    ('oxford_flowers102', 'Flowers102', 'flowers102', 'Natural'),
    ('oxford_iiit_pet', 'Pets', 'pets', 'Natural'),
    ('svhn', 'SVHN', 'svhn', 'Natural'),
    ('sun397', 'Sun397', 'sun397', 'Natural'),
    ('patch_camelyon', 'Camelyon', 'camelyon', 'Specialized'),
    ('eurosat', 'EuroSAT', 'eurosat', 'Specialized'),
    ('resisc45', 'Resisc45', 'resisc45', 'Specialized'),
    ('diabetic_retinopathy', 'Retinopathy', 'retinopathy', 'Specialized'),
    ('clevr_count', 'Clevr-Count', 'clevr-count', 'Structured'),
    ('clevr_dist', 'Clevr-Dist', 'clevr-dist', 'Structured'),
    ('dmlab', 'DMLab', 'dmlab', 'Structured'),
    ('kitti', 'KITTI-Dist', 'kitti-dist', 'Structured'),
    ('dsprites_loc', 'dSpr-Loc', 'dsprites-loc', 'Structured'),
    ('dsprites_ori', 'dSpr-Ori', 'dsprites-ori', 'Structured'),
    ('smallnorb_azi', 'sNORB-Azim', 'smallnorb-azim', 'Structured'),
    ('smallnorb_ele', 'sNORB-Elev', 'smallnorb-elev', 'Structured'),
))
GROUPS = ('Natural', 'Specialized', 'Structured')
TASK_BY_FOLDER = {task.folder: task for task in TASKS}

# Split -> list file, in the SSF/NOAH release and in our layout (the same names).
LIST_FILES = {'train800': 'train800.txt', 'val200': 'val200.txt',
              'train800val200': 'train800val200.txt', 'test': 'test.txt'}
MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 'dyt-mm VTAB-1K manifest 1'


def canonical_size(task: str, split: str) -> int:
    """Images in ``split`` of ``task`` in VTAB-1K (:mod:`.vtab1k_splits`)."""
    return TEST_SIZES[task] if split == 'test' else FIXED_SPLIT_SIZES[split]


def check_tasks(tasks: Sequence[str]) -> None:
    unknown = [t for t in tasks if t not in TASK_BY_FOLDER]
    if unknown:
        raise ValueError(f'unknown VTAB-1K task(s) {", ".join(map(repr, unknown))}; allowed: '
                         f'{", ".join(TASK_BY_FOLDER)}')


class ListEntry(NamedTuple):
    line_no: int
    path: str  # relative to the list file's folder
    label: Optional[int]  # None: the line is not "path label"
    text: str


def read_list_file(path: str) -> Iterator[ListEntry]:
    """The non-empty lines of a ``path label`` list file (mmpretrain's annotation format)."""
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            parts = text.rsplit(maxsplit=1)
            label = int(parts[1]) if len(parts) == 2 and parts[1].lstrip('-').isdigit() else None
            yield ListEntry(line_no, parts[0], label, text)


def parsed_list(path: str) -> List[Tuple[str, int]]:
    """``(relative path, label)`` of every line; a bad line is an error naming it."""
    entries = []
    for entry in read_list_file(path):
        if entry.label is None:
            raise ValueError(f'{path}:{entry.line_no}: expected "path label", got '
                             f'{entry.text!r}')
        entries.append((entry.path, entry.label))
    return entries


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def source_lists(task_dir: str) -> Dict[str, List[Tuple[str, int]]]:
    """The splits of one task of the release; train800val200 is rebuilt from train800 and
    val200 when a copy lacks it."""
    lists = {split: parsed_list(osp.join(task_dir, name)) for split, name in LIST_FILES.items()
             if osp.isfile(osp.join(task_dir, name))}
    if 'train800val200' not in lists and {'train800', 'val200'} <= set(lists):
        lists['train800val200'] = lists['train800'] + lists['val200']
    missing = [LIST_FILES[s] for s in ('train800val200', 'test') if s not in lists]
    if missing:
        raise FileNotFoundError(f'{task_dir} lacks {" and ".join(missing)} (the SSF/NOAH '
                                'layout has train800val200.txt, or train800.txt and '
                                'val200.txt, and test.txt)')
    return lists


def convert_task(src_task: str, dst_task: str, link: bool = False) -> None:
    """Copy (or hard-link) one task's listed images and write its list files.

    Written into ``<dst_task>.partial`` and renamed at the end, so a killed
    conversion never leaves a task folder that looks complete.
    """
    if osp.exists(dst_task):
        raise FileExistsError(f'{dst_task} exists; not replacing it (remove it, or convert '
                              'the other tasks with --tasks)')
    lists = source_lists(src_task)
    partial = dst_task + '.partial'
    if osp.exists(partial):
        shutil.rmtree(partial)  # an earlier conversion of ours that was killed
    for split, entries in lists.items():
        for rel_path, _ in entries:
            source = osp.join(src_task, rel_path)
            target = osp.join(partial, rel_path)
            if osp.exists(target):
                continue  # listed by several splits (train800 and train800val200)
            if not osp.isfile(source):
                raise FileNotFoundError(f'{source}, listed in {split}, does not exist')
            os.makedirs(osp.dirname(target), exist_ok=True)
            if link:
                os.link(source, target)
            else:
                shutil.copy2(source, target)
        with open(osp.join(partial, LIST_FILES[split]), 'w') as f:
            f.writelines(f'{rel_path} {label}\n' for rel_path, label in entries)
    os.rename(partial, dst_task)


def task_manifest(task_dir: str) -> Dict:
    """Per split of one task folder: the count, the list file's and every image's SHA-256."""
    hashes: Dict[str, str] = {}
    splits = {}
    for split, name in LIST_FILES.items():
        list_path = osp.join(task_dir, name)
        if not osp.isfile(list_path):
            continue
        files = {}
        for rel_path, _ in parsed_list(list_path):
            if rel_path not in hashes:
                hashes[rel_path] = sha256_of(osp.join(task_dir, rel_path))
            files[rel_path] = hashes[rel_path]
        splits[split] = dict(count=len(files), list_file=name, list_sha256=sha256_of(list_path),
                             files=files)
    return splits


def write_manifest(root: str, tasks: Sequence[str]) -> str:
    """Add ``tasks`` to ``<root>/manifest.json`` (those already there are kept)."""
    path = osp.join(root, MANIFEST)
    manifest = dict(format=MANIFEST_FORMAT, tasks={})
    if osp.isfile(path):
        manifest = load_manifest(path)
    for task in tasks:
        manifest['tasks'][task] = task_manifest(osp.join(root, task))
    manifest['tasks'] = dict(sorted(manifest['tasks'].items()))
    atomic_write_text(json.dumps(manifest, indent=1) + '\n', path)
    return path


def load_manifest(path: str) -> Dict:
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get('format') != MANIFEST_FORMAT:
        raise ValueError(f'{path} is not a dyt-mm VTAB-1K manifest (format '
                         f'{manifest.get("format")!r}, expected {MANIFEST_FORMAT!r})')
    return manifest


def convert_ssf(src: str, dst: str, tasks: Optional[Sequence[str]] = None,
                link: bool = False, progress=None) -> List[str]:
    """Convert the SSF/NOAH release of VTAB-1K at ``src`` into our layout at ``dst``.

    The layouts share their names (``<task>/{train800,val200,train800val200,
    test}.txt`` with ``path label`` lines relative to the task folder); the
    conversion keeps only the listed images, normalises the list files, adds a
    missing train800val200.txt, and writes ``<dst>/manifest.json``. Returns the
    converted tasks.
    """
    if not osp.isdir(src):
        raise FileNotFoundError(f'VTAB-1K source folder not found: {src}')
    if tasks:
        check_tasks(tasks)
        absent = [t for t in tasks if not osp.isdir(osp.join(src, t))]
        if absent:
            raise FileNotFoundError(f'{src} has no task folder {", ".join(absent)}')
    else:
        tasks = [t.folder for t in TASKS if osp.isdir(osp.join(src, t.folder))]
        if not tasks:
            raise FileNotFoundError(f'{src} holds none of the VTAB-1K task folders '
                                    f'({", ".join(TASK_BY_FOLDER)})')
    os.makedirs(dst, exist_ok=True)
    for i, task in enumerate(tasks, 1):
        if progress is not None:
            progress(f'[{i}/{len(tasks)}] {task}')
        convert_task(osp.join(src, task), osp.join(dst, task), link)
    write_manifest(dst, tasks)
    return list(tasks)
