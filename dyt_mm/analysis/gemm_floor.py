"""A floor under any runtime's dense time: the dense model's linear layers alone."""
from typing import Callable, List

import torch
from torch import nn


class LinearLayersAlone:
    """The dense model's linear layers alone, replayed with its weights: a GEMM floor.

    One call of ``forward`` on ``inputs`` records every ``nn.Linear`` call
    (its weight, bias and number of input rows); calling the object then runs
    exactly those matrix products, on inputs of the same shapes, and nothing
    else. In a ViT the linear layers are almost all of the work, so the time
    this takes is what the whole dense model would take in a runtime whose
    GEMM runs at PyTorch's speed and everything else were free: a bound on
    what any runtime can gain over eager PyTorch on this machine.
    """

    def __init__(self, forward: Callable, inputs: torch.Tensor):
        calls = []

        def record(layer: nn.Linear, args, output) -> None:
            calls.append((layer, args[0].numel() // layer.in_features))

        layers = [m for m in forward.modules() if isinstance(m, nn.Linear)]
        handles = [layer.register_forward_hook(record) for layer in layers]
        try:
            with torch.no_grad():
                forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
        if not calls:
            raise ValueError('the model ran no nn.Linear layer: no linear layers to replay')
        rows = {(n, layer.in_features) for layer, n in calls}
        # one zero input per shape: the values do not change a GEMM's time
        self._inputs = {shape: inputs.new_zeros(shape) for shape in rows}
        self.calls = calls

    @property
    def shapes(self) -> List[tuple]:
        """``(rows, in_features, out_features)`` of every recorded call, in order."""
        return [(n, layer.in_features, layer.out_features) for layer, n in self.calls]

    @torch.no_grad()
    def __call__(self) -> None:
        for layer, n in self.calls:
            nn.functional.linear(self._inputs[n, layer.in_features], layer.weight, layer.bias)
