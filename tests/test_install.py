"""The install and the compatibility layer that `import dyt_mm` applies."""
import os.path as osp
import subprocess
import sys
import textwrap

from helpers import REPO


def run_python(code: str, tmp_path=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (the compatibility layer acts at import time)."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=tmp_path or REPO,
                          capture_output=True, text=True, timeout=300,
                          env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})


def test_import_makes_the_toolboxes_importable_without_compiled_ops():
    result = run_python("""
        import os
        import dyt_mm
        import mmcv, mmcv.ops, mmseg.models, mmaction.models
        assert type(mmcv.ops).__name__ == '_CpuOnlyOps', type(mmcv.ops)
        from mmcv.ops import point_sample  # pure PyTorch: still there
        try:
            mmcv.ops.nms
        except ModuleNotFoundError as error:
            assert 'compiled ops' in str(error) and 'mmcv.ops.nms' in str(error), error
        else:
            raise AssertionError('mmcv.ops.nms should not exist without compiled ops')
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
        assert 'mmcv.ops' not in sys.modules, sys.modules.get('mmcv.ops')
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
