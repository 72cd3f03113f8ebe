"""A DyT network's outputs from its int8 ONNX file, inside the eager model: so that the Runner
tests the file itself (its evaluator, its keep rate), whatever the toolbox around it."""
import os.path as osp
from typing import Optional

import torch

from ..models.dyt import DyTNetwork, DyTOutput
from .export import TensorForward, export_model
from .quantize import quantize_onnx
from .runtime import OnnxRunner


def export_int8_network(network: DyTNetwork, folder: str, mode: str = 'sparse') -> str:
    """``network`` exported in ``mode`` at its native input size (any batch size) and
    quantised to int8 (:func:`~dyt_mm.deploy.quantize.quantize_onnx`); returns the file."""
    traced, path = osp.join(folder, 'network.onnx'), osp.join(folder, 'network_int8.onnx')
    example = torch.randn(2, network.in_channels, *network.img_size)
    export_model(TensorForward(network), example, traced, mode, dynamic_batch=True)
    quantize_onnx(traced, path, network)
    return path


class OnnxNetworkOutputs:
    """A forward hook that replaces each output of a DyT network by its ONNX file's outputs
    on the same input (tokens, masks, hidden states; the grid stays the eager one's).

    The eager forward still runs (its result is dropped): the hook only swaps what the
    toolbox's neck and head, and the dispatch recorders, read. Registered first among
    the network's forward hooks, so that the recorders count the file's masks.
    """

    def __init__(self, path: str, threads: Optional[int] = None):
        self.runner = OnnxRunner(path, threads)

    def attach(self, network: DyTNetwork):
        return network.register_forward_hook(self, prepend=True)

    def __call__(self, network, args, output: DyTOutput) -> DyTOutput:
        tokens, masks, *hidden = self.runner(args[0])
        device = output.tokens.device
        return output._replace(tokens=tokens.to(device), masks=masks.to(device),
                               hidden_states=tuple(h.to(device) for h in hidden))


def run_int8_file(network: DyTNetwork, folder: str) -> str:
    """Export ``network`` in sparse mode (a toolbox model's test mode) to an int8 file in
    ``folder`` and make its calls return the file's outputs; returns the file."""
    if network.merge_r:
        raise ValueError('a token-merging network has outputs (sources) its ONNX file does '
                         'not give; test it with --precision int8 in eager PyTorch')
    path = export_int8_network(network, folder)
    OnnxNetworkOutputs(path).attach(network)
    return path
