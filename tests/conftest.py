import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """scikit-learn's digits written once per test session as image folders."""
    from dyt_mm.demo.digits import write_digits
    root = str(tmp_path_factory.mktemp('digits'))
    write_digits(root)
    return root
