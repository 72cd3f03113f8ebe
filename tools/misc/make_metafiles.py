"""Write the model zoo's metafiles (``model-index.yml`` and ``configs/<folder>/metafile.yml``)
from the configs and the paper's figures, so that ``mim search dyt_mm`` lists every config.

    python tools/misc/make_metafiles.py          # write the files that changed
    python tools/misc/make_metafiles.py --check  # exit 1, naming them, if any is out of date

Run it after adding, renaming or removing a config; ``tests/test_metafiles.py`` fails until
the files are regenerated. No trained weights ship: no entry has a ``Weights`` field, and
the metrics, parameters and FLOPs are the paper's (docs/toolbox_tools.md).
"""
import argparse
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

from dyt_mm.analysis.metafiles import stale, write  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default=CHECKOUT,
                        help='the checkout whose configs/ to index (default: this one)')
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if a file is missing or out of date')
    args = parser.parse_args(argv)
    if not osp.isdir(osp.join(args.root, 'configs')):
        parser.error(f'--root {args.root!r} has no configs/ folder')
    if args.check:
        out_of_date = stale(args.root)
        for path in out_of_date:
            print(f'out of date: {path}')
        if out_of_date:
            print('run: python tools/misc/make_metafiles.py')
        return 1 if out_of_date else 0
    for path in write(args.root):
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
