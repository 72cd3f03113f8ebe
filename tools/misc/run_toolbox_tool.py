"""Run one of the toolboxes' own tools (what ``mim run PACKAGE TOOL`` runs) with dyt_mm's
compatibility layer applied first.

    python tools/misc/run_toolbox_tool.py PACKAGE TOOL [ARGS ...]
    e.g. python tools/misc/run_toolbox_tool.py mmseg get_flops CONFIG --shape 512 512

``mim run`` starts the tool in a fresh interpreter, which imports the toolbox before the
config's ``custom_imports`` bring in dyt_mm. With mmcv-lite (no compiled ops), importing
mmseg's tools then fails on ``mmcv._ext``, which ``import dyt_mm`` stands in for
(docs/environment.md); with a compiled mmcv, ``mim run`` and this are the same.
docs/toolbox_tools.md lists which tools work on DyT configs, checkpoints and logs.
"""
import glob
import os.path as osp
import runpy
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401,E402  (compatibility layer before any toolbox import)

PACKAGES = ('mmpretrain', 'mmseg', 'mmaction', 'mmdet')


def toolbox_script(package: str, tool: str) -> str:
    """The script ``mim run PACKAGE TOOL`` runs: ``<package>/.mim/tools/**/<tool>.py``."""
    if package not in PACKAGES:
        raise ValueError(f'package must be one of {", ".join(PACKAGES)}, got {package!r}')
    module = __import__(package)
    tools = osp.join(osp.dirname(module.__file__), '.mim', 'tools')
    found = sorted(glob.glob(osp.join(glob.escape(tools), '**', tool + '.py'), recursive=True))
    if len(found) != 1:
        known = sorted({osp.splitext(osp.basename(p))[0]
                        for p in glob.glob(osp.join(glob.escape(tools), '**', '*.py'),
                                          recursive=True)})
        raise ValueError(f'{package} has {len(found)} tools named {tool!r}'
                         f'{": " + ", ".join(found) if found else ""}; it has '
                         f'{", ".join(k for k in known if not k.startswith("_"))}')
    return found[0]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) < 2:
        raise SystemExit(__doc__.split('\n\n')[1])
    try:
        script = toolbox_script(argv[0], argv[1])
    except ValueError as error:
        raise SystemExit(f'error: {error}')
    sys.argv = [script, *argv[2:]]
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
