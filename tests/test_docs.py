"""README and the docs site: the Sphinx build (warnings are errors) and every code block in them.

* Python blocks run as written, each in a fresh interpreter that imports nothing first (a new
  notebook's view), in a checkout holding what the demos leave behind (random weights).
* Shell blocks named in ``RUN`` run there too, with bash. Every other shell block is checked: the
  scripts, configs and make targets it names exist, and each tool accepts the options it uses
  (its ``--help`` lists them). They train for minutes or hours, or need clusters and weights.
* Output blocks (``text``) are not run.
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest
from helpers import REPO
# test_apis' demo checkout, and its guard of the global default scope that building models sets
from test_apis import demo_tree, restored_default_scope  # noqa: F401  (fixtures)

PAGES = ['README.md'] + sorted(osp.relpath(p, REPO)
                               for p in glob.glob(osp.join(REPO, 'docs/*.md')))
FENCE = re.compile(r'^```(\S*)\n(.*?)^```$', re.M | re.S)
KINDS = ('python', 'bash', 'text')
# Shell blocks that run (page, a line of the block): cheap on the demos' tiny models.
RUN = [('docs/get_started.md', 'python tools/test.py configs/demo/'),
       ('docs/efficiency.md', 'python tools/analysis/visualize_dispatch.py configs/demo/')]
# Which tool a launcher script passes its options to.
LAUNCHERS = {'tools/dist_train.sh': 'tools/train.py', 'tools/slurm_train.sh': 'tools/train.py',
             'tools/dist_test.sh': 'tools/test.py', 'tools/slurm_test.sh': 'tools/test.py'}
CHECK_INFERENCE = """
from dyt_mm.analysis import dyt_parts  # after the block: it must not need this import
_, vit = dyt_parts(model)
assert result.keep_rates.shape == (len(vit.sites), ) and result.gflops > 0, result
"""


def code_blocks(kind=None):
    """(page, line, language, code) of every fenced block; myst directives (```{toctree})
    excluded."""
    blocks = []
    for page in PAGES:
        with open(osp.join(REPO, page)) as f:
            text = f.read()
        for match in FENCE.finditer(text):
            language = match.group(1)
            if language.startswith('{') or kind not in (None, language):
                continue
            line = text.count('\n', 0, match.start()) + 1
            blocks.append((page, line, language, match.group(2)))
    return blocks


def block_id(block) -> str:
    return f'{block[0]}:{block[1]}'


def is_run(block) -> bool:
    return any(block[0] == page and line in block[3] for page, line in RUN)


def test_every_code_block_is_python_bash_or_text():
    odd = [f'{block_id(b)} ```{b[2]}' for b in code_blocks() if b[2] not in KINDS]
    assert not odd, f'blocks this test cannot run or check (use one of {KINDS}): {odd}'
    for page, line in RUN:
        assert any(page == b[0] and line in b[3] for b in code_blocks('bash')), (page, line)


def test_readme_is_a_front_page_that_links_into_the_docs():
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    assert readme.count('\n') <= 200
    links = re.findall(r'\]\((docs/[^)#]+)', readme)
    pages = {p for p in PAGES if p.startswith('docs/')}
    assert pages - {'docs/index.md'} <= set(links), 'README links to every page'
    assert all(osp.isfile(osp.join(REPO, link)) for link in links), links


def test_every_picture_is_on_a_page():
    text = ''.join(open(osp.join(REPO, page)).read() for page in PAGES if page != 'README.md')
    for picture in glob.glob(osp.join(REPO, 'docs', '*.png')):
        assert re.search(rf'!\[[^\]]*\]\({re.escape(osp.basename(picture))}\)', text), picture


def test_the_docs_build_without_warnings(tmp_path):
    # The same command as `make docs`, into a temporary folder.
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html',
         osp.join(REPO, 'docs'), str(tmp_path)], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-5000:]
    for page in ('index', 'get_started', 'api', 'reliability'):
        assert osp.isfile(tmp_path / f'{page}.html'), page
    api = (tmp_path / 'api.html').read_text()
    for name in ('dyt_mm.apis.init_model', 'dyt_mm.models.dyt.DyTViT', 'dyt_mm.engine.DyTHook'):
        assert f'id="{name}"' in api, name


@pytest.fixture(scope='module')
def checkout(demo_tree, digits_root, tmp_path_factory):  # noqa: F811
    """The repository root after `make demo`, `make demo-seg` and `make demo-video`: the real
    digits (written as the demo writes them), test_apis' random-weight checkpoints where the demos
    write theirs, and an input each for segmentation and video."""
    root = tmp_path_factory.mktemp('docs_checkout')
    source = demo_tree[0]
    for name in ('configs', 'tools', 'work_dirs'):
        os.symlink(osp.join(REPO if name == 'tools' else source, name), root / name)
    (root / 'data').mkdir()
    os.symlink(digits_root, root / 'data' / 'digits')
    for name in ('seg_shapes', 'moving_shapes'):
        os.symlink(osp.join(source, 'data', name), root / 'data' / name)
    return root


def run_in(checkout, args, timeout=600):
    # The venv's python first on PATH (shell blocks say `python`); the checkout's package.
    env = dict(os.environ, PYTHONPATH=REPO,
               PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    return subprocess.run(args, cwd=checkout, capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.parametrize('block', code_blocks('python'), ids=block_id)
def test_python_block_runs_in_a_fresh_interpreter(block, checkout):
    code = block[3] + (CHECK_INFERENCE if 'inference(' in block[3] else '')
    proc = run_in(checkout, [sys.executable, '-c', code])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), 'every block prints what it shows'


@pytest.mark.parametrize('block', [b for b in code_blocks('bash') if is_run(b)], ids=block_id)
def test_shell_block_runs(block, checkout):
    proc = run_in(checkout, ['bash', '-e', '-c', block[3]])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def shell_commands(code: str):
    """The commands of a shell block, as token lists: continuations joined, comments and
    variable assignments dropped."""
    commands = []
    for line in code.replace('\\\n', ' ').splitlines():
        if re.match(r'\s*[a-z_]+=', line):  # checkpoint=$(...)
            continue
        tokens = shlex.split(line, comments=True)
        while tokens and re.fullmatch(r'[A-Z_]+=\S*', tokens[0]):  # GPUS=16 tools/...
            tokens = tokens[1:]
        if tokens:
            commands.append(tokens)
    return commands


def tool_of(tokens):
    """(the tool whose options the command uses, its arguments) or None for make."""
    program, args = tokens[0], tokens[1:]
    if program == 'python' and args[0] == '-m':  # python -m pytest ...
        return f'python -m {args[1]}', args[2:]
    if program == 'python':
        return args[0], args[1:]
    if program in LAUNCHERS:
        return LAUNCHERS[program], args
    if program == 'mim':
        assert args[:2] == ['train', 'dyt_mm'], tokens
        return 'mim train', args[2:]
    raise AssertionError(f'no rule to check {program!r}: {" ".join(tokens)}')


@pytest.fixture(scope='module')
def helps():
    """--help of every tool the shell blocks use, read in one interpreter."""
    tools = sorted({tool_of(t)[0] for b in code_blocks('bash') for t in shell_commands(b[3])
                    if t[0] not in ('make', 'source')})
    modules = [tool for tool in tools if tool.startswith('python -m ')]
    tools = [tool for tool in tools if tool != 'mim train' and tool not in modules]
    script = f"""
import contextlib, io, json, runpy, sys
out = {{}}
for tool in {tools!r}:
    sys.argv = [tool, '--help']
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            runpy.run_path(tool, run_name='__main__')
        except SystemExit:
            pass
    out[tool] = buffer.getvalue()
print(json.dumps(out))
"""
    proc = run_in(REPO, [sys.executable, '-c', script])
    assert proc.returncode == 0, proc.stderr[-3000:]
    texts = json.loads(proc.stdout.strip().splitlines()[-1])
    mim = run_in(REPO, [osp.join(osp.dirname(sys.executable), 'mim'), 'train', '--help'])
    texts['mim train'] = mim.stdout
    for module in modules:
        texts[module] = run_in(REPO, [sys.executable, *module.split()[1:], '--help']).stdout
    return texts


def make_targets():
    with open(osp.join(REPO, 'Makefile')) as f:
        return set(re.findall(r'^([\w-]+):', f.read(), flags=re.M))


@pytest.mark.parametrize('block', [b for b in code_blocks('bash') if not is_run(b)],
                         ids=block_id)
def test_shell_block_names_real_files_and_options(block, helps):
    for tokens in shell_commands(block[3]):
        if tokens[0] == 'make':
            assert set(tokens[1:]) <= make_targets(), tokens
            continue
        if tokens[0] == 'source':
            continue
        tool, args = tool_of(tokens)
        assert tool.startswith(('mim ', 'python -m ')) or osp.isfile(osp.join(REPO, tool)), tool
        if tokens[0] in LAUNCHERS:
            assert osp.isfile(osp.join(REPO, tokens[0])), tokens[0]
        for arg in args:
            # repository files the command reads; outputs (work_dirs/, checkpoints/) aside
            if re.match(r'\[?(configs|tools|docs|tests)/', arg):
                path = arg.strip('[]')
                assert glob.glob(osp.join(REPO, path)), f'{block_id(block)}: {path} is missing'
            option = re.match(r'\[?(--[\w-]+)', arg)
            if option:
                assert re.search(rf'(?<![\w-]){option.group(1)}(?![\w-])', helps[tool]), \
                    f'{block_id(block)}: {tool} has no {option.group(1)}'
