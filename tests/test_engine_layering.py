"""The training hooks sit below the analysis tools, and modules share only public names."""
import ast
import glob
import os.path as osp

import pytest
from helpers import REPO

PACKAGE = osp.join(REPO, 'dyt_mm')


def imports_of(path):
    """``(absolute module, imported names)`` of every import in a file, lazy ones included."""
    module = osp.relpath(path, REPO)[:-len('.py')].replace(osp.sep, '.')
    package = module.rsplit('.', 1)[0]
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit('.', node.level - 1)[0] if node.level else ''
            name = '.'.join(part for part in (base, node.module) if part)
            found.append((name, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def files(*folders):
    return sorted(f for folder in folders
                  for f in glob.glob(osp.join(PACKAGE, folder, '*.py')))


@pytest.mark.parametrize('path', files('engine'), ids=osp.basename)
def test_the_engine_imports_nothing_from_the_analysis_tools(path):
    above = [module for module, _ in imports_of(path) if module.startswith('dyt_mm.analysis')]
    assert not above, f'{path} imports {above}'


ALL_MODULES = sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)
                     + glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True))


@pytest.mark.parametrize('path', ALL_MODULES, ids=lambda p: osp.relpath(p, REPO))
def test_no_private_name_is_imported_from_another_module(path):
    private = [(module, name) for module, names in imports_of(path) for name in names
               if module.startswith('dyt_mm') and name.startswith('_')]
    assert not private, f'{path} imports private names {private}'
