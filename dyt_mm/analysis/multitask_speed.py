"""Speed and memory of multi-task serving (:class:`~dyt_mm.models.dyt.MultiTaskDyT`).

Three ways to serve a batch of ``B`` inputs that belong to ``N`` tasks,
timed with the one protocol (:mod:`.timing`), all in ``sparse`` mode:

* ``mixed``: one multi-task model, one forward of the whole mixed batch (the
  tasks interleaved, so grouping them is part of the cost);
* ``sequential``: the ``N`` single-task models one after another, each on its
  ``B / N`` inputs (what serving without multi-task support does);
* ``single``: one single-task model on the whole batch (the upper bound: as
  if every input belonged to one task).

Random weights: one frozen base, and per task its own random DyT parts
(non-zero adapters, its own gates), each task calibrated on the inputs to keep
the same share of tokens.
"""
import copy
from contextlib import ExitStack
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..models.dyt import DyTViT, MultiTaskDyT, calibrate_budget, dyt_mode
from .timing import reliability, throughputs, time_interleaved

RUNS = ('single', 'mixed', 'sequential')


def random_task_networks(options: dict, num_tasks: int, seed: int = 0) -> List[DyTViT]:
    """``num_tasks`` single-task ViTs of ``options`` on one random frozen base, each with
    its own random dispatchers and adapters."""
    torch.manual_seed(seed)
    base = DyTViT(**options).eval()
    networks = [base]
    for _ in range(1, num_tasks):
        network = DyTViT(**options).eval()
        network.load_state_dict(base.state_dict())
        networks.append(network)
    for task, network in enumerate(networks):
        generator = torch.Generator().manual_seed(seed + 1 + task)
        with torch.no_grad():
            for name, param in network.named_parameters():
                if network.is_dyt_param(name):
                    param.normal_(0, 0.02, generator=generator)
    return networks


def task_names(batch: int, num_tasks: int) -> List[str]:
    """Tasks interleaved over a batch (``t0 t1 ... t0 t1 ...``): the grouping is timed."""
    return [f't{i % num_tasks}' for i in range(batch)]


def time_serving(model: MultiTaskDyT, networks: List[nn.Module], inputs: torch.Tensor,
                 tasks: List[str], num_iters: int, warmup: int,
                 progress: Optional[Callable[[], None]] = None) -> Tuple:
    """Timings of ``single``, ``mixed`` and ``sequential`` on ``inputs`` (``tasks[i]``:
    the task of input ``i``; ``networks[k]``: the single-task network of the ``k``-th task
    ``model`` serves), of batch 1, and the keep rate of each run."""
    names = list(model.tasks)
    parts = [inputs[[i for i, t in enumerate(tasks) if t == name]] for name in names]

    def sequential():
        for network, part in zip(networks, parts):
            network(part)

    runs = dict(single=lambda: networks[0](inputs), mixed=lambda: model(inputs, tasks),
                sequential=sequential)
    one = inputs[:1]
    with torch.no_grad(), ExitStack() as modes:
        for network in list(networks) + [model.network]:
            modes.enter_context(dyt_mode(network, 'sparse'))
        timings = time_interleaved(runs, inputs.device, num_iters, warmup, progress)
        timings_b1 = time_interleaved(dict(single_b1=lambda: networks[0](one),
                                           mixed_b1=lambda: model(one, names[:1])),
                                      inputs.device, num_iters, warmup, progress)
        keep = dict(single=networks[0](inputs).masks.mean().item(),
                    mixed=model(inputs, tasks).masks.mean().item(),
                    sequential=torch.cat([n(p).masks for n, p in zip(networks, parts)]
                                         ).mean().item())
    return timings, timings_b1, keep


def multitask_report(networks: List[nn.Module], inputs: torch.Tensor, num_iters: int,
                     warmup: int, calibrate_rate: Optional[float] = None,
                     progress: Optional[Callable[[], None]] = None,
                     max_load: Optional[float] = None) -> Dict:
    """Time ``single``, ``mixed`` and ``sequential`` on ``inputs`` (a batch divisible by the
    number of tasks), then batch 1 (``single_b1``, ``mixed_b1``); report throughputs,
    keep rates, memory and whether the figures can be trusted."""
    num_tasks, batch = len(networks), inputs.shape[0]
    if batch % num_tasks:
        raise ValueError(f'the batch ({batch}) must divide among the {num_tasks} tasks')
    if calibrate_rate is not None:
        for network in networks:
            calibrate_budget(network, [inputs], calibrate_rate)
    model = MultiTaskDyT(copy.deepcopy(networks[0]), 't0')
    for task, network in enumerate(networks[1:], start=1):
        model.add_task(f't{task}', copy.deepcopy(network))
    model.eval()
    tasks, share = task_names(batch, num_tasks), batch // num_tasks
    timings, timings_b1, keep = time_serving(model, networks, inputs, tasks, num_iters, warmup,
                                             progress)
    report = dict(num_tasks=num_tasks, batch_size=batch, per_task_batch=share,
                  input_shape=list(inputs.shape[1:]), num_iters=num_iters, warmup=warmup,
                  threads=timings.threads, device=str(inputs.device),
                  **throughputs(timings, batch), **throughputs(timings_b1, 1),
                  **{f'keep_rate_{run}': rate for run, rate in keep.items()})
    report['mixed_vs_single'] = report['throughput_mixed'] / report['throughput_single']
    report['mixed_vs_sequential'] = (report['throughput_mixed'] /
                                     report['throughput_sequential'])
    report['mixed_vs_single_b1'] = report['throughput_mixed_b1'] / report['throughput_single_b1']
    memory = model.memory()
    report['memory'] = dict(memory, ratio=memory['total'] / memory['separate'])
    report.update(reliability(timings, max_load=max_load))
    return report

