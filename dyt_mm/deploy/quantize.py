"""int8 ONNX files: ONNX Runtime's dynamic quantisation of the frozen base's linear layers.

The exporter writes a linear layer as ``MatMul`` (3-D input) or ``Gemm`` (the 2-D rows a
sparse site gathers), its weight an initializer that is the parameter or its transpose,
under a name that need not be the parameter's. The base's layers are found by value: an
initializer equal to a base weight (or its transpose) is that weight. ONNX Runtime's
dynamic quantiser handles ``MatMul`` only, so each such ``Gemm`` is first written as the
``MatMul`` (and ``Add`` of its bias) it computes. Then ``quantize_dynamic`` quantises
exactly those nodes (int8 weights per output channel, uint8 inputs quantised per call);
adapters, dispatchers, attention's own products, norms and heads stay float32.
"""
import logging
from typing import Dict, List

import numpy as np
from torch import nn
from ..models.dyt import DyTNetwork
from ..models.dyt.network import dyt_network
from .precision import base_linear_names
from .runtime import import_onnxruntime


def base_weights_by_value(network: DyTNetwork) -> Dict[bytes, str]:
    """Each base linear weight's bytes in the layout ``MatMul`` reads (``in x out``) ->
    its layer's name."""
    network = dyt_network(network)
    weights = {}
    for name in base_linear_names(network):
        weight = network.get_submodule(name).weight.detach().float().numpy()
        weights[np.ascontiguousarray(weight.T).tobytes()] = name
    return weights


def _attribute(node, name: str, default):
    from onnx import helper
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def mark_base_matmuls(model, network: DyTNetwork) -> List[str]:
    """The names of ``model``'s nodes that compute a linear layer of ``network``'s frozen
    base, each a ``MatMul`` on its weight: ``Gemm`` nodes of a base weight are rewritten,
    in place, as ``MatMul`` + ``Add``."""
    from onnx import helper, numpy_helper
    weights = base_weights_by_value(network)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes, marked = [], []
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type in ('MatMul', 'Gemm') else None
        if weight is None:
            nodes.append(node)
            continue
        array = numpy_helper.to_array(weight)
        plain_gemm = node.op_type == 'Gemm' and _attribute(node, 'transA', 0) == 0 and \
            _attribute(node, 'alpha', 1.0) == 1.0 and _attribute(node, 'beta', 1.0) == 1.0
        if plain_gemm and _attribute(node, 'transB', 0):
            array = array.T
        if np.ascontiguousarray(array, dtype=np.float32).tobytes() not in weights or \
                node.op_type == 'Gemm' and not plain_gemm:
            nodes.append(node)
            continue
        if node.op_type == 'MatMul':
            nodes.append(node)
            marked.append(node.name)
            continue
        # Gemm(A, B, C) = A @ B' + C: a MatMul on B' as an initializer of its own
        transposed = numpy_helper.from_array(np.ascontiguousarray(array), f'{weight.name}_in_out')
        graph.initializer.append(transposed)
        has_bias = len(node.input) > 2 and node.input[2]
        product = f'{node.output[0]}_matmul' if has_bias else node.output[0]
        nodes.append(helper.make_node('MatMul', [node.input[0], transposed.name], [product],
                                      name=f'{node.name}_matmul'))
        if has_bias:
            nodes.append(helper.make_node('Add', [product, node.input[2]], [node.output[0]],
                                          name=f'{node.name}_bias'))
        marked.append(f'{node.name}_matmul')
    del graph.node[:]
    graph.node.extend(nodes)
    return marked


def quantize_onnx(source: str, out: str, network: nn.Module) -> int:
    """Write ``out``: the ONNX file ``source`` (an export of a model holding ``network``,
    in float32) with the linear layers of ``network``'s frozen base quantised to int8
    (``network``: the DyT network, or a module holding exactly one, e.g. its backbone)
    (ONNX Runtime's dynamic quantisation, int8 weights per output channel). Returns how
    many layers were quantised; a file holding none of them is a ValueError."""
    import_onnxruntime()  # names the missing extra if it is missing
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    network = dyt_network(network)
    model = onnx.load(source)
    nodes = mark_base_matmuls(model, network)
    if not nodes:
        raise ValueError(f'{source} holds none of the linear layers of {network.describe()}\'s '
                         'frozen base (as float32 weights): nothing to quantise to int8')
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process (shape inference) is for CNNs
    try:
        quantize_dynamic(model, out, op_types_to_quantize=['MatMul'], nodes_to_quantize=nodes,
                         per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return len(nodes)

