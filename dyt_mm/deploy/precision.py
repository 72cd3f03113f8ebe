"""A DyT network in a lower precision, in eager PyTorch: bfloat16, or int8 linear layers of
the frozen base that compute exactly what ONNX Runtime's dynamic quantisation computes.

int8 (:func:`quantize_base_linears`): every ``nn.Linear`` of the frozen pre-trained base (the
attention's ``qkv`` and ``proj``, the MLP's ``fc1`` and ``fc2``) becomes an
:class:`Int8Linear`; the adapters, dispatchers, norms and whatever sits outside the network
(necks, heads) stay in float32. The dispatchers therefore read float32 activations and
compare float32 logits: quantisation moves a keep decision only through the noise it adds
to the tokens upstream, never through the gate's own arithmetic.

:class:`Int8Linear` is the eager reference of :func:`~dyt_mm.deploy.quantize.quantize_onnx`'s
file: the same quantised weights and the same dynamic quantisation of the input, so that the
accuracy measured in eager PyTorch is the exported file's (the tests check the two agree).

bfloat16 (:func:`to_bfloat16`): the network's weights and computation in bfloat16, its
input cast on the way in and its outputs cast back to float32 on the way out, so that the
toolbox's necks and heads run as before.
"""
import copy
from typing import List

import torch
from torch import nn

from ..models.dyt import DyTNetwork, DyTOutput
from ..models.dyt.network import dyt_network
from ..models.dyt.registry import check_choice

PRECISIONS = ('fp32', 'bf16', 'int8')

# ONNX Runtime's int8 weights are symmetric in [-127, 127]; its dynamic activations uint8.
INT8_MAX = 127
UINT8_MAX = 255


def check_precision(precision: str) -> None:
    check_choice('precision', precision, PRECISIONS)


def base_linear_names(network: DyTNetwork) -> List[str]:
    """Names (in ``network``) of the frozen base's linear layers: every ``nn.Linear`` whose
    weight is not a DyT parameter (adapters, dispatchers, prompts)."""
    return [name for name, module in network.named_modules()
            if isinstance(module, nn.Linear) and not network.is_dyt_param(f'{name}.weight')]


def quantize_weight(weight: torch.Tensor):
    """``(out, in)`` float weight -> int8 values (as floats) and one scale per output row:
    symmetric, ``scale = max |w| / 127`` (ONNX Runtime's per-channel int8 weights)."""
    scale = weight.abs().amax(dim=1, keepdim=True) / INT8_MAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays 0
    return torch.clamp(torch.round(weight / scale), -INT8_MAX, INT8_MAX), scale.flatten()


def quantize_activation(x: torch.Tensor):
    """ONNX ``DynamicQuantizeLinear``: one uint8 scale and zero point for the whole tensor,
    from its range widened to hold 0. Returns ``q - zero_point`` (as floats) and the scale."""
    low = x.min().clamp(max=0)
    high = x.max().clamp(min=0)
    scale = (high - low) / UINT8_MAX
    # an all-zero input quantises to zeros whatever the scale: 1 spares the division
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.clamp(torch.round(-low / scale), 0, UINT8_MAX)
    quantized = torch.clamp(torch.round(x / scale) + zero_point, 0, UINT8_MAX)
    return quantized - zero_point, scale


class Int8Linear(nn.Module):
    """A linear layer with int8 weights and dynamically quantised uint8 inputs.

    Each call quantises its whole input with one scale (the tokens a site
    gathered, in the sparse mode), multiplies the integers exactly (in float64,
    which holds every int32 sum of these products), and scales the result back to
    float32: ONNX Runtime's ``DynamicQuantizeLinear`` + ``MatMulInteger`` on the
    weights :func:`quantize_weight` gives.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight, scale = quantize_weight(linear.weight.detach().float())
        self.register_buffer('weight_int8', weight.to(torch.int8))
        self.register_buffer('weight_scale', scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer('bias', bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quantized, scale = quantize_activation(x.float())
        products = quantized.double() @ self.weight_int8.double().T
        out = products.float() * (scale * self.weight_scale)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, out_features={self.out_features}, int8'


@torch.no_grad()
def quantize_base_linears(network: DyTNetwork) -> int:
    """Replace, in place, each linear layer of ``network``'s frozen base by an
    :class:`Int8Linear`; returns how many. A network without one is a ValueError."""
    names = base_linear_names(network)
    if not names:
        raise ValueError(f'{network.describe()} has no linear layer in its frozen base: '
                         'nothing to quantise to int8')
    for name in names:
        parent, _, child = name.rpartition('.')
        owner = network.get_submodule(parent) if parent else network
        setattr(owner, child, Int8Linear(getattr(owner, child)))
    return len(names)


def _input_to_bfloat16(network, args):
    return tuple(a.to(torch.bfloat16) if torch.is_tensor(a) and a.is_floating_point() else a
                 for a in args)


def _float32(value):
    if torch.is_tensor(value) and value.is_floating_point():
        return value.float()
    if isinstance(value, tuple):
        return type(value)(*map(_float32, value)) if isinstance(value, DyTOutput) else \
            tuple(map(_float32, value))
    return value


def _output_to_float32(network, args, output):
    return _float32(output)


def to_bfloat16(network: DyTNetwork) -> DyTNetwork:
    """``network`` in bfloat16, in place: its weights, and every call's input; its outputs
    come back in float32 (the toolbox's necks and heads stay float32)."""
    network.to(torch.bfloat16)
    network.register_forward_pre_hook(_input_to_bfloat16)
    # first among the forward hooks: the dispatch recorders count float32 masks
    network.register_forward_hook(_output_to_float32, prepend=True)
    return network


def set_precision(network: DyTNetwork, precision: str) -> DyTNetwork:
    """``network`` in ``precision`` (:data:`PRECISIONS`), in place."""
    check_precision(precision)
    if precision == 'int8':
        quantize_base_linears(network)
    elif precision == 'bf16':
        to_bfloat16(network)
    return network


def in_precision(model: nn.Module, precision: str) -> nn.Module:
    """``model`` itself for fp32; otherwise a copy whose DyT network is in ``precision``."""
    check_precision(precision)
    if precision == 'fp32':
        return model
    model = copy.deepcopy(model)
    set_precision(dyt_network(model), precision)
    return model
