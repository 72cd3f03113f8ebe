"""PrecisionHook: test a trained model in bfloat16 or with an int8 base, through the Runner."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..engine.runner_parts import dyt_network_of
from ..models.dyt.registry import check_choice
from .onnx_network import run_int8_file
from .precision import check_precision, set_precision

RUNTIMES = ('eager', 'onnxruntime')


@HOOKS.register_module()
class PrecisionHook(Hook):
    """Puts the model's DyT network in ``precision`` (``fp32``, ``bf16``, ``int8``; see
    :mod:`dyt_mm.deploy.precision`) before the test loop, after the checkpoint is loaded:
    the config's evaluator and the dispatch metrics (``test/keep_rate``) then measure the
    model in that precision. The change is in place and stays for the rest of the run.

    ``runtime='onnxruntime'`` (int8 only): the network is exported in sparse mode at its
    native input size, quantised to an int8 ONNX file in the run's log folder, and each of
    its calls returns that file's outputs in ONNX Runtime
    (:func:`~dyt_mm.deploy.onnx_network.run_int8_file`): the file itself is tested.
    """

    priority = 'VERY_HIGH'  # before any other hook runs the model

    def __init__(self, precision: str, runtime: str = 'eager'):
        check_precision(precision)
        check_choice('runtime', runtime, RUNTIMES)
        if runtime == 'onnxruntime' and precision != 'int8':
            raise ValueError(f'runtime onnxruntime tests the int8 file; precision {precision!r} '
                             'runs in eager PyTorch (ONNX Runtime\'s CPU provider has no '
                             'bfloat16 kernels)')
        self.precision = precision
        self.runtime = runtime

    def before_test(self, runner) -> None:
        network = dyt_network_of(runner, self)
        if self.runtime == 'onnxruntime':
            run_int8_file(network, runner.log_dir)
        else:
            set_precision(network, self.precision)
