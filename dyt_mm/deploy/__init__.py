"""Deployment of DyT models outside eager PyTorch.

The sparse path of :mod:`dyt_mm.models.dyt.block` has no branch on data once
traced: the kept rows are a data-dependent size that ``torch.export`` (and the
ONNX exporter built on it) and ``torch.compile`` carry through the graph.
This package exports the same model as a ``.pt2`` program or an ONNX file,
runs ONNX files in ONNX Runtime, and compiles the sparse model. The
``capacity`` mode (a fixed number of tokens per site: static shapes, for
back-ends that need them) exports the same way.
"""
from .compile import compile_sparse
from .export import (FORMATS, TensorForward, describe_overflow, export_model, flat_tensors,
                     format_of, load_exported, max_abs_diff, set_export_capacities)
from .runtime import OnnxRunner

__all__ = [
    'compile_sparse', 'FORMATS', 'TensorForward', 'export_model', 'flat_tensors', 'format_of',
    'load_exported', 'max_abs_diff', 'OnnxRunner', 'set_export_capacities', 'describe_overflow'
]
