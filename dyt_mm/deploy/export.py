"""``.pt2`` (torch.export) and ONNX files of a DyT model in one execution mode."""
import json
import os.path as osp
import zipfile
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModel
from torch import nn

from ..models.dyt import calibrate_capacities, dyt_mode, set_capacities
from ..models.dyt.registry import check_choice
from .runtime import OnnxRunner

FORMATS = ('onnx', 'pt2')

Outputs = List[torch.Tensor]


def flat_tensors(outputs) -> Outputs:
    """The tensors of a (nested) tuple or list of outputs, in order; other leaves (None for
    an absent optional output such as ``DyTOutput.sources``, the ViT's token grid, plain
    ints) are not outputs."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if not isinstance(outputs, (tuple, list)):
        return []
    return [tensor for item in outputs for tensor in flat_tensors(item)]


class TensorForward(nn.Module):
    """A model as a function of one input tensor, returning a flat tuple of tensors.

    A toolbox model runs its ``mode='tensor'`` forward (classifier: the
    head's logits; segmentor: the decode head's logits; ``tensor_kwargs``
    adds toolbox options); a DyT backbone runs as it is.
    """

    def __init__(self, model: nn.Module, tensor_kwargs: Optional[dict] = None):
        super().__init__()
        self.model = model
        self.tensor_kwargs = dict(tensor_kwargs or {})

    def forward(self, inputs: torch.Tensor):
        if isinstance(self.model, BaseModel):
            outputs = self.model(inputs, mode='tensor', **self.tensor_kwargs)
        else:
            outputs = self.model(inputs)
        return tuple(flat_tensors(outputs))


def format_of(path: str) -> str:
    """``onnx`` or ``pt2`` from the file's extension."""
    extension = osp.splitext(path)[1].lstrip('.')
    check_choice(f'exported file extension (of {path})', extension, FORMATS)
    return extension


@torch.no_grad()
def export_model(forward: nn.Module, inputs: torch.Tensor, path: str, mode: str = 'sparse',
                 dynamic_batch: bool = False) -> None:
    """Write ``forward`` (a :class:`TensorForward`) in DyT ``mode`` to ``path`` (.onnx or .pt2).

    The graph is traced on ``inputs``; with ``dynamic_batch`` the batch size
    stays symbolic (any batch size runs), otherwise it is fixed to theirs.
    In ``sparse`` mode the kept-token counts are symbolic either way; in
    ``capacity`` mode (capacities set) every size but the batch is static.
    """
    fmt = format_of(path)
    if dynamic_batch and inputs.shape[0] == 1:
        # torch.export fixes a traced size of 1; any other example size stays symbolic
        inputs = inputs.expand(2, *inputs.shape[1:]).contiguous()
    dynamic_shapes = ({0: torch.export.Dim('batch', min=1)}, ) if dynamic_batch else None
    forward = forward.eval()
    with dyt_mode(forward, mode):
        if fmt == 'pt2':
            program = torch.export.export(forward, (inputs, ), dynamic_shapes=dynamic_shapes)
            torch.export.save(program, path)
        else:
            program = torch.onnx.export(forward, (inputs, ), dynamo=True,
                                        dynamic_shapes=dynamic_shapes, input_names=['inputs'],
                                        verbose=False)
            program.save(path)


def set_export_capacities(forward: nn.Module, inputs: torch.Tensor,
                          capacity: Optional[int] = None,
                          quantile: Optional[float] = None) -> List[int]:
    """The capacities of a ``capacity``-mode export: ``capacity`` tokens at every site, or
    the ``quantile`` (default 1: the largest) of each site's kept counts on ``inputs``
    (the inputs the export is checked on). Returns them in site order."""
    if capacity is not None and quantile is not None:
        raise ValueError(f'give a capacity ({capacity}) or a quantile to calibrate it '
                         f'({quantile}), not both')
    if capacity is not None:
        return set_capacities(forward, capacity)
    return calibrate_capacities(forward, [inputs], 1.0 if quantile is None else quantile)


def describe_overflow(overflow: Dict[str, int]) -> str:
    """A warning naming the sites that dropped kept tokens in capacity mode (see
    :func:`~dyt_mm.models.dyt.capacity_overflow`)."""
    sites = ', '.join(f'{site}: {count}' for site, count in overflow.items())
    return (f'warning: capacity overflow, kept tokens dropped per site ({sites}); these '
            'tokens skipped their branch, so the outputs differ from sparse mode. Raise the '
            'capacities (--capacity, or a higher --capacity-quantile) to avoid it')


def check_pt2_without_pickle(path: str) -> None:
    """Refuse a ``.pt2`` archive that ``torch.export.load`` would unpickle from.

    Plain tensors are stored as raw bytes; only tensor subclasses, custom and
    opaque objects and legacy weight files are pickled, and
    :func:`export_model` writes none of them.
    """
    from torch.export.pt2_archive import constants as pt2
    data_dirs = ('/' + pt2.WEIGHTS_DIR, '/' + pt2.CONSTANTS_DIR)
    object_prefixes = (pt2.CUSTOM_OBJ_FILENAME_PREFIX, pt2.OPAQUE_OBJ_FILENAME_PREFIX)
    pickled = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not any(folder in '/' + name for folder in data_dirs):
                continue
            if name.endswith('.pt'):
                pickled.append(name)
            elif name.endswith('_config.json'):
                entries = json.loads(archive.read(name)).get('config', {})
                pickled += [fqn for fqn, entry in entries.items()
                            if entry.get('use_pickle') or
                            str(entry.get('path_name', '')).startswith(object_prefixes)]
    if pickled:
        raise ValueError(f'{path} holds pickled objects ({", ".join(pickled[:3])}); it is not '
                         'loaded, since unpickling can run code. Export the model again with '
                         'tools/deploy/export.py')


def load_exported(path: str, threads: Optional[int] = None) -> Callable[[torch.Tensor], Outputs]:
    """An exported file as ``run(inputs) -> [tensor, ...]``: ONNX Runtime or torch.export."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'exported model not found: {path}')
    if format_of(path) == 'onnx':
        return OnnxRunner(path, threads)
    check_pt2_without_pickle(path)
    module = torch.export.load(path).module()

    def run(inputs: torch.Tensor) -> Outputs:
        with torch.no_grad():
            return flat_tensors(module(inputs))

    return run


def max_abs_diff(outputs: Sequence[torch.Tensor], expected: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between two lists of outputs of the same shapes."""
    shapes = [tuple(t.shape) for t in outputs]
    expected_shapes = [tuple(t.shape) for t in expected]
    if shapes != expected_shapes:
        raise ValueError(f'outputs of shapes {shapes} do not match the expected {expected_shapes}')
    return max(((a.float() - b.float()).abs().max().item() for a, b in zip(outputs, expected)),
               default=0.0)


def mean_abs_diff(outputs: Sequence[torch.Tensor], expected: Sequence[torch.Tensor]) -> float:
    """Mean absolute difference over every element of two lists of outputs of the same
    shapes (the check of an int8 file, whose largest difference is one quantisation step's
    effect wherever a value lies within float rounding of a step)."""
    max_abs_diff(outputs, expected)  # the shapes must match
    total = sum((a.float() - b.float()).abs().sum().item() for a, b in zip(outputs, expected))
    return total / max(sum(t.numel() for t in outputs), 1)
