"""Toolbox classifiers of many tasks served on one frozen DyT network (see
:class:`~dyt_mm.models.dyt.multitask.MultiTaskDyT`).

Each task keeps its own toolbox model for everything but the network: data
preprocessor, neck, head and its post-processing (so predictions come in the
task's own label space and format). The networks of all tasks are folded into
one :class:`MultiTaskDyT`; each task model's backbone then points at that
shared network. A mixed batch runs the network once, then each task's neck and
head on its own samples.
"""
from typing import Any, Dict, List, Mapping, Sequence

import torch
from mmengine.dataset import pseudo_collate
from torch import nn

from .backbone_base import DyTBackboneBase
from .dyt import dyt_mode
from .dyt.multitask import MultiTaskDyT
from .dyt.network import DyTOutput


def task_head(model: nn.Module) -> nn.ModuleDict:
    """What a task model holds besides its backbone (head, neck, data preprocessor)."""
    return nn.ModuleDict({name: child for name, child in model.named_children()
                          if name != 'backbone'})


def check_classifier(name: str, model: nn.Module) -> None:
    if not isinstance(getattr(model, 'backbone', None), DyTBackboneBase) or not hasattr(
            getattr(model, 'head', None), 'predict'):
        raise ValueError(
            f'task {name!r} is a {type(model).__name__}: multi-task serving of toolbox models '
            'takes classifiers (a DyT backbone and a head with predict); segmentation and '
            'video models share a network through dyt_mm.models.dyt.MultiTaskDyT directly')


def slice_output(out: DyTOutput, start: int, end: int) -> DyTOutput:
    pick = (lambda t: None if t is None else t[start:end])
    return DyTOutput(pick(out.tokens), pick(out.masks), tuple(map(pick, out.hidden_states)),
                     pick(out.sources), out.grid)


class MultiTaskModel(nn.Module):
    """Task models (by name) whose DyT networks share one base.

    ``models``: the task models, each with its full network (its base must be
    the first one's; the error names the first differing tensor and both
    ``sources``). The first model's network becomes the shared one; the others'
    bases are dropped. :meth:`add_task`, :meth:`remove_task` and
    :meth:`replace_task` change the served tasks without touching the base.
    """

    def __init__(self, models: Mapping[str, nn.Module], sources: Mapping[str, str]):
        super().__init__()
        if not models:
            raise ValueError('a multi-task model needs at least one task')
        (first, model), *rest = models.items()
        check_classifier(first, model)
        self.core = MultiTaskDyT(model.backbone.vit, first, task_head(model), sources[first])
        self.models: Dict[str, nn.Module] = {first: model}  # not registered: core holds all
        for name, other in rest:
            self.add_task(name, other, sources[name])

    @property
    def tasks(self):
        return self.core.tasks

    @property
    def network(self):
        return self.core.network

    def add_task(self, name: str, model: nn.Module, source: str = 'the new task') -> None:
        check_classifier(name, model)
        self.core.add_task(name, model.backbone.vit, task_head(model), source)
        self._share_network(name, model)

    def remove_task(self, name: str) -> None:
        self.core.remove_task(name)
        del self.models[name]

    def replace_task(self, name: str, model: nn.Module, source: str = 'the new task') -> None:
        check_classifier(name, model)
        self.core.replace_task(name, model.backbone.vit, task_head(model), source)
        self._share_network(name, model)

    def _share_network(self, name: str, model: nn.Module) -> None:
        model.backbone.vit = self.core.network  # its own base copy is dropped
        self.models[name] = model

    @torch.no_grad()
    def predict(self, data: Sequence[dict], tasks: Sequence[str]) -> List[Any]:
        """Predict the pipeline outputs ``data`` (one data dict per input, as a test
        pipeline gives it), ``tasks[i]`` naming the task of ``data[i]``, in one mixed batch.

        Returns each input's data sample (its task's format), in order, with
        ``keep_rates`` ``(S,)`` and ``gflops`` (its task's backbone FLOPs as
        ``sparse`` ran it) added.
        """
        if isinstance(tasks, str) or len(tasks) != len(data):
            raise ValueError(f'predict needs one task per input: {len(data)} inputs, '
                             f'tasks={tasks!r}')
        order = self.core.group(tasks)
        order = list(range(len(tasks))) if order is None else order.tolist()
        grouped = [tasks[i] for i in order]
        inputs, samples, segments = [], [], []
        for task in dict.fromkeys(grouped):
            rows = [i for i in order if tasks[i] == task]
            batch = self.models[task].data_preprocessor(pseudo_collate([data[i] for i in rows]),
                                                        False)
            segments.append((task, len(samples), len(samples) + len(rows), rows))
            inputs.append(batch['inputs'])
            samples.extend(batch['data_samples'])
        shapes = {tuple(x.shape[1:]) for x in inputs}
        if len(shapes) > 1:
            raise ValueError(f'the tasks preprocess their inputs to different shapes '
                             f'({sorted(shapes)}): a mixed batch needs one input size')
        inputs = torch.cat(inputs)
        first = self.models[grouped[0]]
        with dyt_mode(self.network, 'sparse'), self.core.routing(grouped):
            out = self.network(first.backbone.network_input(inputs))
        results: List[Any] = [None] * len(data)
        for task, start, end, rows in segments:
            results_of_task = self._predict_task(task, slice_output(out, start, end),
                                                 inputs[start:end], samples[start:end])
            for i, sample in zip(rows, results_of_task):
                results[i] = sample
        return results

    def _predict_task(self, task: str, out: DyTOutput, inputs: torch.Tensor,
                      samples: List[Any]) -> List[Any]:
        model = self.models[task]
        feats = model.backbone.format_output(out, inputs)
        if getattr(model, 'with_neck', False):
            feats = model.neck(feats)
        predictions = model.head.predict(feats, samples)
        network = self.network
        site_tokens = network.site_tokens(out.masks.shape[-1]).to(out.masks.device)
        with self.core.viewing(task):
            flops = network.flops_counter(out.masks.shape[-1], out.grid).from_masks(out.masks)
        for sample, masks, cost in zip(predictions, out.masks, flops):
            sample.keep_rates = (masks.sum(dim=-1) / site_tokens).float()
            sample.gflops = cost.item() / 1e9
        return predictions
