"""The install and the compatibility layer that `import dyt_mm` applies."""
import os.path as osp
import subprocess
import sys
import textwrap

from helpers import REPO


def run_python(code: str, cwd=None, pythonpath=REPO) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (the compatibility layer acts at import time)."""
    env = {'PATH': '/usr/bin:/bin'}
    if pythonpath:
        env['PYTHONPATH'] = pythonpath
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300, env=env)


def test_import_makes_the_toolboxes_importable_without_compiled_ops():
    result = run_python("""
        import os
        import dyt_mm
        import sys
        import mmcv, mmcv.ops, mmseg.models, mmaction.models, mmdet.models
        from dyt_mm.mmcv_ext import MmcvExtStandIn
        assert isinstance(sys.modules['mmcv._ext'], MmcvExtStandIn)
        from mmcv.ops import point_sample, nms  # pure PyTorch, and served by torchvision
        try:
            import torch
            mmcv.ops.sigmoid_focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
        except ModuleNotFoundError as error:
            assert 'compiled ops' in str(error) and 'sigmoid_focal_loss' in str(error), error
        else:
            raise AssertionError('a compiled kernel cannot run without compiled ops')
        assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
        print('ok')
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


def test_real_compiled_mmcv_is_left_alone(tmp_path):
    # A module named mmcv._ext on mmcv's path is what compiled mmcv has.
    (tmp_path / '_ext.py').write_text('')
    result = run_python(f"""
        import sys
        import mmcv
        mmcv.__path__.append({str(tmp_path)!r})
        import dyt_mm
        assert 'mmcv._ext' not in sys.modules, sys.modules.get('mmcv._ext')
        print('ok')
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


def test_a_second_make_install_changes_nothing():
    first = subprocess.run(['make', '-C', REPO, 'install'], capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    # -n: print what would run; after an install nothing may be left to do
    second = subprocess.run(['make', '-C', REPO, '-n', 'install'], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert 'pip' not in second.stdout and 'touch' not in second.stdout, second.stdout
    assert osp.isfile(osp.join(REPO, '.venv', '.installed-pkg'))


TOOLS = ('tools/train.py', 'tools/test.py', 'tools/analysis/get_flops.py',
         'tools/analysis/benchmark.py', 'tools/analysis/visualize_dispatch.py',
         'tools/convert/timm_vit_to_dyt.py', 'tools/demo/digits_demo.py',
         'tools/demo/seg_demo.py', 'tools/demo/video_demo.py', 'tools/deploy/export.py',
         'tools/deploy/benchmark_onnx.py')


def test_tools_in_a_checkout_run_the_checkout_package(tmp_path):
    # No PYTHONPATH and started elsewhere: only the script's own path fix can find the checkout.
    # One tool runs whole; the others run up to their first dyt_mm import (the part that decides
    # where dyt_mm comes from), which spares eight imports of the three toolboxes.
    result = run_python(f"""
        import runpy, sys
        for tool in {[osp.join(REPO, t) for t in TOOLS[1:]]!r}:
            source = open(tool).read()
            head = source[:source.index('\\nimport dyt_mm')]
            exec(compile(head, tool, 'exec'), {{'__file__': tool, '__name__': 'imported'}})
            assert sys.path[0] == {REPO!r}, (tool, sys.path[:2])
            del sys.path[0]
        runpy.run_path({osp.join(REPO, TOOLS[0])!r}, run_name='imported')
        print(sys.modules['dyt_mm'].__file__)
    """, tmp_path, pythonpath=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == osp.join(REPO, 'dyt_mm', '__init__.py')
