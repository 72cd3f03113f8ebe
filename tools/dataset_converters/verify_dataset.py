"""Check a VTAB-1K folder, or any classification folder with ``path label`` list files.

    python tools/dataset_converters/verify_dataset.py ROOT [--tasks TASK ...]
                                                    [--num-classes N] [--no-decode]

Each sub-folder of ROOT with list files (or ROOT itself) is a task; one named as
a VTAB-1K task folder is checked as VTAB-1K: every split against its sizes (800 train + 200 val, each task's test size:
dyt_mm/cls/vtab1k_splits.py, with its source), train800val200 against
train800 + val200. Any folder: labels within the class count (VTAB-1K's, or
--num-classes, or a classes.txt beside the list files), missing, zero-byte and
unreadable images (decoded unless --no-decode), images in both a training and
a test list (by SHA-256), and the converter's manifest.json if there is one.
Prints a table and every problem, naming the file; exits 1 on any problem.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

from dyt_mm.analysis.reports import format_rows  # noqa: E402
from dyt_mm.cls.verify import verification_table, verify_folder  # noqa: E402
from dyt_mm.utils.cli import int_at_least  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check a classification data folder')
    parser.add_argument('root', help='a VTAB-1K root, or a folder with list files')
    parser.add_argument('--tasks', nargs='+', metavar='TASK',
                        help='check these sub-folders only (default: all with list files)')
    parser.add_argument('--num-classes', type=int_at_least(1),
                        help='the class count of a folder that is not VTAB-1K')
    parser.add_argument('--no-decode', action='store_true',
                        help='do not decode the images (faster; unreadable ones go unnoticed)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        verifier = verify_folder(args.root, args.tasks, args.num_classes,
                                 decode=not args.no_decode,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, OSError) as error:
        raise SystemExit(f'error: {error}')
    print(format_rows(verification_table(verifier)))
    if verifier.problems:
        print(f'\n{len(verifier.problems)} problem(s):')
        print('\n'.join(verifier.problems))
        return 1
    print('\nno problems')
    return 0


if __name__ == '__main__':
    sys.exit(main())
