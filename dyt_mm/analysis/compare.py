"""Several methods side by side on the same inputs: parameters, FLOPs, speed, memory,
and the cost of one training step (``tools/analysis/compare_methods.py``).

Every model is timed in the same interleaved loop (the order rotates each
round), so all see the same machine load. Inference runs the whole model in
its test mode (``sparse`` for DyT) with LoRA merged into the frozen weights,
as deployed. A training step is forward + backward of the model's own
``loss()`` with every term its config uses: DyT's complete-model pass and
distillation included, which is a real cost adapters do not have.
"""
import copy
import itertools
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from torch import nn

from ..models.dyt import dyt_mode
from .flops import dispatch_summary, model_flops
from .inputs import run_on_inputs
from .loading import build_model, dyt_parts, load_config
from .reports import benchmark_inputs, test_mode_of
from .speed import peak_forward_memory
from .timing import median_seconds, reliability, time_interleaved
from .toolbox import model_input, toolbox_of


def random_data_samples(cfg: Config, model: nn.Module, batch_size: int, seed: int = 0) -> List:
    """Labelled data samples for ``model.loss`` (random labels; only the cost is measured)."""
    scope = cfg.get('default_scope', 'mmpretrain')
    generator = torch.Generator().manual_seed(seed)
    if scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        num_classes = model.head.num_classes
        return [DataSample().set_gt_label(int(torch.randint(num_classes, (), generator=generator)))
                for _ in range(batch_size)]
    if scope == 'mmaction':
        from mmaction.structures import ActionDataSample
        num_classes = model.cls_head.num_classes
        return [ActionDataSample().set_gt_label(int(torch.randint(num_classes, (),
                                                                  generator=generator)))
                for _ in range(batch_size)]
    raise ValueError(f'the training-step cost is measured for mmpretrain and mmaction configs; '
                     f'this one is {scope!r} (use --no-train)')


class Candidate:
    """One method's model: a merged eval copy for inference, the model itself for training."""

    def __init__(self, name: str, cfg: Config, trained: nn.Module):
        self.config = name
        self.cfg = cfg
        self.toolbox = toolbox_of(cfg)
        _, vit = dyt_parts(trained)
        # the PEFT convention: the ViT's trainable parameters, the task head excluded
        self.trainable = sum(p.numel() for p in vit.parameters() if p.requires_grad)
        self.training_model = trained
        self.model = copy.deepcopy(trained).eval()
        self.merged = dyt_parts(self.model)[1].merge_adapters()
        self.test_mode = test_mode_of(self.model)

    @classmethod
    def from_config(cls, config: str, checkpoint: Optional[str] = None,
                    cfg_options: Optional[dict] = None) -> 'Candidate':
        cfg = load_config(config, cfg_options)
        return cls(config, cfg, build_model(cfg, checkpoint))

    def inference(self, inputs: torch.Tensor) -> Callable:
        _, vit = dyt_parts(self.model)
        batch = model_input(self.toolbox, inputs)

        @torch.no_grad()
        def run():
            with dyt_mode(vit, self.test_mode):
                self.model(batch, mode='tensor', **self.toolbox.tensor_kwargs)
        return run

    def training_step(self, inputs: torch.Tensor) -> Callable:
        model = self.training_model.train()
        batch = model_input(self.toolbox, inputs)
        samples = random_data_samples(self.cfg, model, len(inputs))

        def run():
            losses = model.loss(batch, samples)
            total = sum(v for k, v in losses.items() if k.startswith('loss'))
            total.backward()
            model.zero_grad(set_to_none=True)
        return run


def compare_methods(configs: Sequence[str], checkpoints: Sequence[Optional[str]] = (),
                    cfg_options: Optional[dict] = None,
                    progress: Optional[Callable[[str], None]] = None, **kwargs) -> Dict:
    """:func:`compare_candidates` of the models of ``configs`` (and ``checkpoints``)."""
    if len(checkpoints) not in (0, len(configs)):
        raise ValueError(f'give one --checkpoint per config or none: {len(configs)} configs, '
                         f'{len(checkpoints)} checkpoints')
    candidates = []
    for i, config in enumerate(configs):
        if progress is not None:
            progress(f'[build {i + 1}/{len(configs)}] {config}')
        candidates.append(Candidate.from_config(config, checkpoints[i] if checkpoints else None,
                                                cfg_options))
    return compare_candidates(candidates, progress=progress, **kwargs)


def compare_candidates(candidates: Sequence[Candidate], batch_size: int = 8, num_iters: int = 10,
                       warmup: int = 2, train: bool = True,
                       shape: Optional[Sequence[int]] = None,
                       progress: Optional[Callable[[str], None]] = None,
                       max_load: Optional[float] = None) -> Dict:
    """Rows of figures per candidate and the settings; see the module docstring.
    ``unreliable``: why the timings cannot be trusted, if they cannot
    (:func:`~.timing.reliability`, with ``max_load`` as its load limit)."""
    if num_iters < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f'need num_iters >= 1, warmup >= 0, batch_size >= 1; got {num_iters}, '
                         f'{warmup}, {batch_size}')
    say = progress or (lambda message: None)
    first = candidates[0]
    inputs, source = benchmark_inputs(first.model, first.cfg, batch_size, shape)
    rows = []
    for c in candidates:
        say(f'[flops] {c.config}')
        try:
            flops = model_flops(c.model, c.cfg, shape or inputs.shape[2:])
            calls = run_on_inputs(c.model, inputs, c.test_mode).calls
        except (RuntimeError, ValueError) as error:
            raise ValueError(f'{c.config} cannot run on the inputs of {first.config} '
                             f'{tuple(inputs.shape)}: {error}') from error
        summary = dispatch_summary(flops, calls)
        rows.append(dict(config=c.config, trainable_params_m=c.trainable / 1e6,
                         gflops=summary['gflops_mean'], keep_rate=summary['keep_rate'],
                         test_mode=c.test_mode, lora_merged=c.merged))

    stages = [('inference', [c.inference(inputs) for c in candidates])]
    if train:
        stages.append(('train_step', [c.training_step(inputs) for c in candidates]))
    device = inputs.device
    loads, unreliable = [], []
    for stage, runs in stages:
        say(f'[{stage}] {warmup} warm-up and {num_iters} timed rounds over '
            f'{len(runs)} models, interleaved')
        timed_calls = itertools.count(1)

        def progress() -> None:
            done = next(timed_calls)
            if done % len(runs) == 0:
                say(f'[{stage}] round {done // len(runs)}/{num_iters}')

        timings = time_interleaved(dict(enumerate(runs)), device, num_iters, warmup, progress)
        median = median_seconds(timings)
        condition = reliability(timings, max_load=max_load)
        loads.append(condition['load_average'])
        unreliable += [f'{stage}: {reason}' for reason in condition['unreliable']]
        for j, (row, run) in enumerate(zip(rows, runs)):
            row[f'{stage}_seconds'] = median[j]
            row[f'{stage}_throughput'] = batch_size / median[j]
            row[f'{stage}_peak_memory_mb'] = peak_forward_memory(run, device)['bytes'] / 2**20
    base = rows[0]['inference_throughput']
    for row in rows:
        row['speed_ratio'] = row['inference_throughput'] / base
    return dict(rows=rows, inputs=source, input_shape=list(inputs.shape[1:]),
                batch_size=batch_size, num_iters=num_iters, warmup=warmup, device=str(device),
                threads=torch.get_num_threads(),
                load_average=max(loads), max_load=condition['max_load'],
                unreliable=unreliable)


def comparison_table(report: Dict, names: Optional[Sequence[str]] = None) -> List[List[str]]:
    """Header and one row per config (markdown-ready cells)."""
    train = 'train_step_seconds' in report['rows'][0]
    header = ['method', 'trainable (M)', 'GFLOPs', 'keep rate', 'img/s', 'vs first',
              'peak inf. MiB']
    if train:
        header += ['train step (s)', 'peak train MiB']
    table = [header]
    for i, row in enumerate(report['rows']):
        name = names[i] if names else row['config']
        cells = [name, f"{row['trainable_params_m']:.4f}", f"{row['gflops']:.4f}"
                 if row['gflops'] < 1 else f"{row['gflops']:.2f}", f"{row['keep_rate']:.3f}",
                 f"{row['inference_throughput']:.1f}", f"{row['speed_ratio']:.2f}x",
                 f"{row['inference_peak_memory_mb']:.1f}"]
        if train:
            cells += [f"{row['train_step_seconds']:.3f}", f"{row['train_step_peak_memory_mb']:.1f}"]
        table.append(cells)
    return table


def markdown(table: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(table[0]) + ' |', '|' + '---|' * len(table[0])]
    lines += ['| ' + ' | '.join(row) + ' |' for row in table[1:]]
    return '\n'.join(lines)
