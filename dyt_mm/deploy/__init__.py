"""Deployment of DyT models outside eager PyTorch.

The sparse path of :mod:`dyt_mm.models.dyt.block` has no branch on data once
traced: the kept rows are a data-dependent size that ``torch.export`` (and the
ONNX exporter built on it) and ``torch.compile`` carry through the graph.
This package exports the same model as a ``.pt2`` program or an ONNX file,
runs ONNX files in ONNX Runtime, and compiles the sparse model. In lower
precisions: bfloat16, and int8 linear layers of the frozen base (ONNX Runtime's
dynamic quantisation of the file, and its exact eager reference). The
``capacity`` mode (a fixed number of tokens per site: static shapes, for
back-ends that need them) exports the same way.
"""
from .compile import compile_sparse
from .export import (FORMATS, TensorForward, describe_overflow, export_model, flat_tensors,
                     format_of, load_exported, max_abs_diff, mean_abs_diff,
                     set_export_capacities)
from .precision import (PRECISIONS, Int8Linear, base_linear_names, check_precision, in_precision,
                        quantize_base_linears, set_precision, to_bfloat16)
from .quantize import quantize_onnx
from .runtime import OnnxRunner

__all__ = [
    'compile_sparse', 'FORMATS', 'TensorForward', 'export_model', 'flat_tensors', 'format_of',
    'load_exported', 'max_abs_diff', 'mean_abs_diff', 'OnnxRunner', 'set_export_capacities',
    'describe_overflow', 'PRECISIONS', 'Int8Linear', 'base_linear_names', 'check_precision',
    'in_precision', 'quantize_base_linears', 'set_precision', 'to_bfloat16', 'quantize_onnx'
]
