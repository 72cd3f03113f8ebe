"""dyt_mm's modules import each other without a cycle, lazy (function-level) imports
included, and weight loading stays a layer above the networks."""
import ast
import os
import os.path as osp
from typing import Dict, List, Set

from helpers import REPO

PACKAGE = 'dyt_mm'


def module_files(root: str) -> Dict[str, str]:
    """Dotted module name -> file, for every ``.py`` under the package ``root``."""
    modules = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(('.', '__'))]
        for file in files:
            if file.endswith('.py'):
                path = osp.join(folder, file)
                name = osp.relpath(path, osp.dirname(root))[:-3].replace(os.sep, '.')
                modules[name[:-len('.__init__')] if name.endswith('.__init__') else name] = path
    return modules


def imported_modules(module: str, path: str, modules: Dict[str, str]) -> Set[str]:
    """The package's modules that some ``import`` anywhere in the file loads (in functions
    too). ``from X import y`` loads ``X.y`` if that is a module, else ``X``; an attribute
    ``X.y.z`` stands for the module ``X.y``."""
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names += [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                      for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition('.')[0]
        found.add(name)
    return found - {''}


def import_graph(root: str) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports. A package's ``__init__`` importing its
    own submodules is left out: Python runs it before them, which is no cycle."""
    modules = module_files(root)
    return {module: {t for t in imported_modules(module, path, modules)
                     if t != module and not t.startswith(module + '.')}
            for module, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


GRAPH = import_graph(osp.join(REPO, PACKAGE))


def test_the_graph_sees_lazy_relative_and_absolute_imports(tmp_path):
    files = {
        'pkg/__init__.py': 'from .low import helper\n',  # re-exporting: no cycle
        'pkg/low.py': 'def helper():\n    from .sub.high import run  # lazy\n',
        'pkg/sub/__init__.py': '',
        'pkg/sub/high.py': 'import pkg.low\nfrom .. import low\nimport os\n',
        'pkg/alone.py': 'from pkg.sub import high\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(str(tmp_path / 'pkg'))
    assert graph == {'pkg': set(), 'pkg.low': {'pkg.sub.high'}, 'pkg.sub': set(),
                     'pkg.sub.high': {'pkg.low'}, 'pkg.alone': {'pkg.sub.high'}}
    assert cycles(graph) == [['pkg.low', 'pkg.sub.high']]


def test_no_import_cycle_in_the_package():
    found = cycles(GRAPH)
    assert not found, 'import cycles: ' + '; '.join(' <-> '.join(c) for c in found)


def test_weight_loading_is_a_layer_above_the_networks():
    dyt = 'dyt_mm.models.dyt.'
    networks = {dyt + 'vit', dyt + 'swin', dyt + 'network'}
    # file I/O and state-dict comparison import no model
    assert not {m for m in reachable(GRAPH, 'dyt_mm.utils.checkpoint')
                if m.startswith('dyt_mm.models')}
    # key conversion and family inference: dict in, dict out
    for module in ('weight_names', 'families'):
        assert not reachable(GRAPH, dyt + module) & networks
    # the networks never reach up to the loader
    for network in networks:
        assert dyt + 'pretrained' not in reachable(GRAPH, network)
