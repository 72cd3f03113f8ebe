"""Convert VTAB-1K from the SSF/NOAH release into dyt-mm's layout, with a manifest.

    python tools/dataset_converters/vtab1k.py SRC DST [--tasks TASK ...] [--link]

SRC is the unpacked SSF/NOAH release (the folder holding cifar/, caltech101/,
...). Every task folder found there (or each of --tasks) is written to
DST/<task> with its listed images (copied, or hard-linked with --link) and its
list files (train800, val200, train800val200, test; train800val200.txt is
rebuilt when a copy lacks it). DST/manifest.json records, per task and split,
the count and the SHA-256 of every file. An existing DST/<task> is never
replaced. Check the result with tools/dataset_converters/verify_dataset.py.

A TFDS export is not converted: see docs/vtab1k.md for why.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

from dyt_mm.cls.vtab1k import MANIFEST, TASK_BY_FOLDER, convert_ssf  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert the SSF/NOAH VTAB-1K release')
    parser.add_argument('src', help='the unpacked SSF/NOAH release (holds the task folders)')
    parser.add_argument('dst', help='our data root (e.g. data/vtab-1k)')
    parser.add_argument('--tasks', nargs='+', choices=list(TASK_BY_FOLDER), metavar='TASK',
                        help='convert these task folders only (default: all found)')
    parser.add_argument('--link', action='store_true',
                        help='hard-link the images instead of copying them (same file system)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        tasks = convert_ssf(args.src, args.dst, args.tasks, args.link,
                            progress=lambda line: print(line, flush=True))
    except (ValueError, OSError) as error:
        raise SystemExit(f'error: {error}')
    print(f'converted {len(tasks)} task(s) into {args.dst}; manifest: '
          f'{osp.join(args.dst, MANIFEST)}')


if __name__ == '__main__':
    sys.exit(main())
