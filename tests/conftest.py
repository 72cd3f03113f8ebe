import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """scikit-learn's digits written once per test session as image folders."""
    from dyt_mm.demo.digits import write_digits
    root = str(tmp_path_factory.mktemp('digits'))
    write_digits(root)
    return root


@pytest.fixture(scope='module')
def single_thread():
    """Tiny tensors: intra-op threads only add overhead (much more on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
