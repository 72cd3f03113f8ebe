"""Analysis of DyT models: FLOPs from real masks, sparse-vs-dense speed, dispatch pictures.

The logic behind ``tools/analysis/{get_flops,benchmark,visualize_dispatch}.py``;
it works on any model with one DyT backbone (classification, segmentation,
video). ``compare_modes`` is the speed measurement other tools reuse; every
speed figure is timed by :func:`time_interleaved` and judged by
:func:`reliability` (:mod:`.timing`).
"""
from .flops import ModelFlops, count_outside_vit, dispatch_summary, model_flops
from .inputs import random_backbone_inputs, run_on_inputs, run_on_test_data, test_data_missing
from .loading import build_model, dyt_parts, load_checkpoint_strictly, load_config
from .probe import BackboneCall, DispatchProbe
from .reports import benchmark_report, flops_report
from .speed import compare_modes, peak_forward_memory
from .timing import reliability, time_interleaved
from .visualize import draw_dispatch, visualize_dispatch

__all__ = [
    'ModelFlops', 'count_outside_vit', 'dispatch_summary', 'model_flops',
    'random_backbone_inputs', 'run_on_inputs', 'run_on_test_data', 'test_data_missing',
    'build_model', 'dyt_parts', 'load_checkpoint_strictly', 'load_config', 'BackboneCall',
    'DispatchProbe', 'benchmark_report', 'flops_report', 'compare_modes', 'peak_forward_memory',
    'reliability', 'time_interleaved', 'draw_dispatch', 'visualize_dispatch'
]
