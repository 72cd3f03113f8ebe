"""ONNX Runtime (CPU execution provider) behind the same call as a PyTorch model."""
from typing import List, Optional

import torch


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError('ONNX Runtime is not installed; install the deploy extra: '
                          'pip install "dyt-mm[deploy]" (or make install)') from None
    return onnxruntime


class OnnxRunner:
    """An ONNX file in an ONNX Runtime session: ``runner(tensor) -> [tensor, ...]``.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: ONNX Runtime's choice, all cores).
        spin: let idle threads spin-wait for the next call (ONNX Runtime's
            default, lowest latency); False frees the cores as soon as a call
            ends, so that whatever runs next (another model in a benchmark)
            gets them.
    """

    def __init__(self, path: str, threads: Optional[int] = None, spin: bool = True):
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if not spin:
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=['CPUExecutionProvider'])
        except Exception as error:  # ONNX Runtime's own errors share no public base class
            if not type(error).__module__.startswith('onnxruntime'):
                raise
            raise ValueError(f'ONNX Runtime cannot load {path}: '
                             f'{str(error).splitlines()[0]}') from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        outputs = self.session.run(None, {self.input_name: inputs.detach().cpu().numpy()})
        return [torch.from_numpy(output) for output in outputs]
