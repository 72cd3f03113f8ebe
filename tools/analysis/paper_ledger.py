"""The paper ledger: every configured row of the paper's Tables 3-6, 10, 11, 17-19 counted
from its config, beside the paper's figures.

    python tools/analysis/paper_ledger.py [--tables 3 6 ...] [--out ledger.md|.csv|.json]
                                          [--force]

For each row: trainable ViT parameters in M (head excluded, dispatchers shown
apart, as the paper counts), GFLOPs per input (dense rows with nothing
skipped; dispatched rows analytically at the keep rate the paper's FLOPs
imply, with the figure at r beside it), the paper's figures and the
differences in %. The models are built with uninitialised weights and read no
pre-trained file. The paper's figures and the reason for every difference live
in one data file, ``dyt_mm/analysis/paper_tables.py``. The tool exits with
status 1 when a row drifts (past 0.5 %, or an implied keep rate more than 0.1
from r) without a stated reason.
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.analysis.ledger import WRITERS, build_ledger, format_text, rows_of
from dyt_mm.analysis.paper_tables import TABLES
from dyt_mm.utils.cli import argument_errors, check_out_path


def table_number(text: str) -> int:
    if text not in {str(t) for t in TABLES}:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a table of the ledger; it has Tables {", ".join(map(str, TABLES))}')
    return int(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='the paper ledger: params and FLOPs of every '
                                     'configured row of the paper\'s tables')
    parser.add_argument('--tables', type=table_number, nargs='+', metavar='N',
                        help=f'only these tables (default: all of {" ".join(map(str, TABLES))})')
    parser.add_argument('--out', help='also write the ledger as .md, .csv or .json')
    parser.add_argument('--force', action='store_true', help='replace an existing --out file')
    args = parser.parse_args(argv)
    with argument_errors(parser):
        if args.out:
            check_out_path(args.out, args.force, suffixes=tuple(WRITERS))
        rows_of(args.tables)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = build_ledger(args.tables, progress=lambda message: print(message, file=sys.stderr))
    print(format_text(rows))
    if args.out:
        with open(args.out, 'w') as file:
            file.write(WRITERS[osp.splitext(args.out)[1]](rows))
        print(f'wrote {args.out}')
    unexplained = [row['key'] for row in rows if row['unexplained']]
    if unexplained:
        print(f'error: {len(unexplained)} row(s) drift from the paper without a stated reason: '
              f'{", ".join(unexplained)} (state it in dyt_mm/analysis/paper_tables.py)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
