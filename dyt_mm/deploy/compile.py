"""``torch.compile`` of a DyT model whose blocks run the sparse path."""
import functools
from typing import Callable

import torch
from torch import nn

# Keep ``nonzero`` (the kept rows, a data-dependent size) in the graph instead of
# breaking the graph at every dispatched site.
DYNAMO_OPTIONS = dict(capture_dynamic_output_shape_ops=True)


def compile_sparse(module: nn.Module, **compile_kwargs) -> Callable:
    """``torch.compile(module)`` whose calls compile with the options the sparse path needs.

    The DyT mode is read when a call is traced: each mode gets its own graph
    (compiled on its first call), so the same function serves dense and sparse.
    """
    compiled = torch.compile(module, **compile_kwargs)

    @functools.wraps(module.forward)
    def run(*args, **kwargs):
        with torch._dynamo.config.patch(**DYNAMO_OPTIONS):
            return compiled(*args, **kwargs)

    return run
