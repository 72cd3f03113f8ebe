"""Many tasks on one frozen DyT network: a mixed batch with a task per sample, and hot-swap.

Every task trained with DyT on the same frozen base differs from the others
only in its dispatchers, adapters (parallel adapters, MoE-adapters, LoRA) and
head. :class:`MultiTaskDyT` keeps the base once and, at each dispatched site
of each block, a *routed* dispatcher and adapter holding every task's module.
A forward takes one task name per sample; the batch is sorted by task, so each
task's samples are one contiguous slice, and

* each routed dispatcher and parallel adapter runs each task's module on its
  own slice (a view, no copy);
* the site (:func:`~.site.run_site`, unchanged) then gathers the kept tokens
  of *all* tasks at once, and the frozen branch (MLP, attention) runs one GEMM
  on them;
* a routed LoRA adds each task's low-rank update to its own rows on top of the
  shared frozen projection (it cannot be merged into a base all tasks share):
  on ``(B, N, C)`` tokens by slice, on the sparse mode's gathered rows by the
  rows' samples, which the site publishes (:func:`~.site.branch_rows`).

So each sample computes what its task's own model computes in ``sparse`` mode
(the tests check it to 1e-5). Threshold offsets are buffers of each task's
dispatchers, so each task keeps its own calibration. Tasks can be added,
removed and replaced at run time; the base is never rebuilt or reloaded.

What cannot be routed, and is refused with a reason: VPT prompts (they change
the sequence length a block sees, so tasks with different prompts cannot share
a batch) and the ``capacity`` mode (its static K is calibrated per model).
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from .adapters import attach_point
from .network import DyTNetwork, DyTOutput
from .site import branch_rows

ROUTED_KEYS = ('.dispatchers.', '.adapters.')  # what each task brings to a block


class TaskSegment(NamedTuple):
    task: str
    start: int
    end: int


class TaskRoutes:
    """The task of each sample of the batch now running, as contiguous segments.

    Shared by every routed module of a model (it is no module: it holds no
    weights). A network may run its blocks on a multiple of the samples
    (frames of clips, sample-major): segments scale to it. ``viewing`` names
    the one task whose modules answer questions about cost (FLOP counters).
    """

    def __init__(self):
        self.segments: Tuple[TaskSegment, ...] = ()
        self.viewing: Optional[str] = None

    @property
    def num_samples(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def split(self, batch: int) -> Tuple[TaskSegment, ...]:
        """The segments of a batch of ``batch`` rows along dim 0."""
        if not self.segments:
            raise RuntimeError('a routed DyT module ran outside MultiTaskDyT.forward: no task '
                               'is given for its samples')
        factor, rest = divmod(batch, self.num_samples)
        if rest or not factor:
            raise ValueError(f'a routed DyT module got a batch of {batch}, which is no multiple '
                             f'of the {self.num_samples} samples whose tasks were given')
        if factor == 1:
            return self.segments
        return tuple(TaskSegment(t, s * factor, e * factor) for t, s, e in self.segments)

    def viewed(self, by_task: nn.ModuleDict) -> Optional[nn.Module]:
        if self.viewing is None:
            raise RuntimeError('the cost of a multi-task site depends on the task: ask it '
                               'inside MultiTaskDyT.viewing(task)')
        return by_task[self.viewing] if self.viewing in by_task else None


class RoutedDispatcher(nn.Module):
    """Each task's dispatcher on its own samples; a task without one keeps every token."""

    def __init__(self, routes: TaskRoutes):
        super().__init__()
        self.routes = routes
        self.by_task = nn.ModuleDict()

    @property
    def keeps_prefix(self) -> bool:
        viewed = self.routes.viewed(self.by_task)
        return True if viewed is None else viewed.keeps_prefix

    def flops(self, num_image_tokens: int) -> int:
        viewed = self.routes.viewed(self.by_task)
        return 0 if viewed is None else viewed.flops(num_image_tokens)

    def ranked(self, x: torch.Tensor, num_prefix: int):
        raise ValueError("a multi-task model runs in 'sparse', 'masked' or 'complete' mode; the "
                         "'capacity' mode's K is calibrated per model, not per task")

    def forward(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        masks = [self.by_task[t](x[s:e], num_prefix) if t in self.by_task
                 else x.new_ones(e - s, x.shape[1])
                 for t, s, e in self.routes.split(x.shape[0])]
        return masks[0] if len(masks) == 1 else torch.cat(masks)


class RoutedAdapter(nn.Module):
    """Each task's parallel adapter (Adapter, MoE-adapter) on its own samples; zero for a
    task without one."""
    attach = 'parallel'

    def __init__(self, routes: TaskRoutes):
        super().__init__()
        self.routes = routes
        self.by_task = nn.ModuleDict()

    def flops(self, num_tokens: int) -> int:
        viewed = self.routes.viewed(self.by_task)
        return 0 if viewed is None else viewed.flops(num_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.by_task[t](x[s:e]) if t in self.by_task else torch.zeros_like(x[s:e])
                 for t, s, e in self.routes.split(x.shape[0])]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class RoutedLoRA(nn.Module):
    """Each task's LoRA updates on its own rows, on top of the shared frozen projection.

    The block calls it as it calls one :class:`~.adapters.LoRA` (``adapts``,
    ``adapt``). Tokens ``(B, N, C)`` (or windows, frames: a multiple of the
    samples) split by slice; the flat rows of a sparse branch split by the
    samples the site says they came from (one host read of the segment
    boundaries, as the sparse gather reads its row count).
    """
    attach = 'linears'

    def __init__(self, routes: TaskRoutes):
        super().__init__()
        self.routes = routes
        self.by_task = nn.ModuleDict()

    def adapts(self, *targets: str) -> bool:
        return any(lora.adapts(*targets) for lora in self.by_task.values())

    def flops_per_token(self, targets: Sequence[str]) -> int:
        viewed = self.routes.viewed(self.by_task)
        return 0 if viewed is None else viewed.flops_per_token(targets)

    def merge(self, layers) -> None:
        raise ValueError('the LoRA of a multi-task model cannot be merged: its base is shared '
                         'by every task')

    def _row_segments(self, num_rows: int) -> Iterator[Tuple[str, int, int]]:
        gathered = branch_rows()
        if gathered is None or gathered[0].shape[0] != num_rows:
            raise RuntimeError(f'a multi-task LoRA got {num_rows} flat rows outside a sparse '
                               'site: it cannot tell whose rows they are')
        rows, (batch, num_tokens) = gathered
        segments = self.routes.split(batch)
        starts = torch.tensor([s for _, s, _ in segments] + [segments[-1].end],
                              device=rows.device) * num_tokens
        bounds = torch.searchsorted(rows, starts).tolist()
        for (task, _, _), start, end in zip(segments, bounds, bounds[1:]):
            yield task, start, end

    def adapt(self, target: str, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        segments = (self.routes.split(x.shape[0]) if x.ndim == 3 else
                    self._row_segments(x.shape[0]))
        parts = [self.by_task[t].adapt(target, out[s:e], x[s:e]) if t in self.by_task
                 else out[s:e] for t, s, e in segments]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


ROUTED = {'parallel': RoutedAdapter, 'linears': RoutedLoRA}


def base_state(network: DyTNetwork) -> Dict[str, torch.Tensor]:
    """The tensors every task must share: all but the dispatchers and adapters (ViTDet's
    relative-position tables train with the adapters but live in the shared attention, so
    they are base here)."""
    return {k: v for k, v in network.state_dict().items()
            if not any(key in '.' + k for key in ROUTED_KEYS)}


def first_difference(mine: Mapping[str, torch.Tensor],
                     theirs: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The first tensor name (in ``mine``'s order) that is missing, extra, of another shape
    or of other values in ``theirs``; None when they are equal."""
    for name, tensor in mine.items():
        other = theirs.get(name)
        if other is None:
            return f'{name!r} (missing in the second)'
        if other.shape != tensor.shape:
            return f'{name!r} (shape {tuple(tensor.shape)} vs {tuple(other.shape)})'
        if not torch.equal(other.to(tensor.device), tensor):
            return f'{name!r} (different values)'
    extra = [name for name in theirs if name not in mine]
    return f'{extra[0]!r} (missing in the first)' if extra else None


def module_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size()
               for t in list(module.parameters()) + list(module.buffers()))


class TaskParts(NamedTuple):
    """What one task brings to each block: its dispatchers (by site) and adapters (by site
    or attach point)."""
    dispatchers: List[Dict[str, nn.Module]]
    adapters: List[Dict[str, nn.Module]]

    @classmethod
    def of(cls, network: DyTNetwork) -> 'TaskParts':
        return cls([dict(block.dispatchers) for block in network.blocks],
                   [dict(block.adapters) for block in network.blocks])


class MultiTaskDyT(nn.Module):
    """One frozen DyT network serving many tasks in one batch.

    Built from the first task's network, whose base becomes the shared base
    (the network is taken over: its blocks then hold the routed modules);
    further tasks join with :meth:`add_task` (their networks must hold the
    same base tensors: the error names the first that differs and both
    sources; only their dispatchers and adapters are kept, as they are).
    ``head`` (optional, any module) is kept with its task, counted in its
    bytes, and returned by :meth:`head`.

    ``forward(images, tasks)`` takes one task name per image and returns the
    network's :class:`~.network.DyTOutput` in the images' order. The execution
    mode is the network's (``dyt_mm.set_mode``); ``sparse`` serves.
    """

    def __init__(self, network: DyTNetwork, task: str, head: Optional[nn.Module] = None,
                 source: str = 'the first task'):
        super().__init__()
        if not isinstance(network, DyTNetwork):
            raise TypeError(f'MultiTaskDyT needs a DyT network (DyTViT, DyTSwin), got '
                            f'{type(network).__name__}')
        parts = TaskParts.of(network)
        self.network = network
        self.routes = TaskRoutes()
        self.base_source = source
        self.heads = nn.ModuleDict()
        self.sources: Dict[str, str] = {}
        for block in network.blocks:
            block.dispatchers = nn.ModuleDict({site: RoutedDispatcher(self.routes)
                                               for site in block.sites})
            block.adapters = nn.ModuleDict()
        self._add_parts(task, parts, head, source)

    # ---------------------------------------------------------------- the tasks
    @property
    def tasks(self) -> Tuple[str, ...]:
        return tuple(self.sources)

    def add_task(self, task: str, network: DyTNetwork, head: Optional[nn.Module] = None,
                 source: str = 'the new task') -> None:
        """Add ``task``: the dispatchers and adapters of ``network`` (the rest of which must
        equal the shared base) and its ``head``. The base is not touched."""
        if task in self.sources:
            raise ValueError(f'task {task!r} is already served (from {self.sources[task]}); '
                             'replace it with replace_task')
        self._check_network(network, source)
        self._add_parts(task, TaskParts.of(network), head, source)

    def remove_task(self, task: str) -> None:
        """Drop ``task``'s dispatchers, adapters and head; the base stays."""
        self._check_task(task)
        for block in self.network.blocks:
            for routed in list(block.dispatchers.values()) + list(block.adapters.values()):
                if task in routed.by_task:
                    del routed.by_task[task]
        if task in self.heads:
            del self.heads[task]
        del self.sources[task]

    def replace_task(self, task: str, network: DyTNetwork, head: Optional[nn.Module] = None,
                     source: str = 'the new task') -> None:
        """Serve ``task`` with another network's parts (checked before the old ones go)."""
        self._check_task(task)
        self._check_network(network, source)
        self.remove_task(task)
        self._add_parts(task, TaskParts.of(network), head, source)

    def head(self, task: str) -> Optional[nn.Module]:
        self._check_task(task)
        return self.heads[task] if task in self.heads else None

    def _check_task(self, task: str) -> None:
        if task not in self.sources:
            raise ValueError(f'unknown task {task!r}; served: {", ".join(self.sources)}')

    def _check_network(self, network: DyTNetwork, source: str) -> None:
        mine = self.network
        if type(network) is not type(mine) or len(network.blocks) != len(mine.blocks):
            raise ValueError(f'{source} holds a {network.describe()}, the shared base is a '
                             f'{mine.describe()} ({self.base_source})')
        # what the tensors' shapes do not show
        for what in ('sites', 'merge_r', 'num_prefix', 'num_heads'):
            theirs, ours = getattr(network, what, None), getattr(mine, what, None)
            if theirs != ours:
                raise ValueError(f'{source} has {what}={theirs!r}, the shared network '
                                 f'{ours!r} ({self.base_source}): every task must run the '
                                 'same blocks')
        if network.weight_options() != mine.weight_options():
            raise ValueError(f'{source} was built with {network.weight_options()}, the shared '
                             f'base with {mine.weight_options()} ({self.base_source})')
        differs = first_difference(base_state(mine), base_state(network))
        if differs is not None:
            raise ValueError(f'{source} has a different base than {self.base_source}: the '
                             f'first differing tensor is {differs}; tasks can share a model '
                             'only if they were adapted from the same frozen weights')

    def _add_parts(self, task: str, parts: TaskParts, head: Optional[nn.Module],
                   source: str) -> None:
        if not task or not isinstance(task, str):
            raise ValueError(f'a task name must be a non-empty string, got {task!r}')
        for block, dispatchers, adapters in zip(self.network.blocks, parts.dispatchers,
                                                parts.adapters):
            for key, adapter in adapters.items():
                attach = attach_point(adapter)
                if attach not in ROUTED:
                    raise ValueError(f'{source} uses {type(adapter).__name__} ({attach!r}), '
                                     'which a multi-task batch cannot route: prompts change '
                                     'the sequence length of the block for their task only')
                if key not in block.adapters:
                    block.adapters[key] = ROUTED[attach](self.routes)
                block.adapters[key].by_task[task] = adapter
            for site, dispatcher in dispatchers.items():
                block.dispatchers[site].by_task[task] = dispatcher
        if head is not None:
            self.heads[task] = head
        self.sources[task] = source

    # ---------------------------------------------------------------- memory
    def task_bytes(self, task: str) -> int:
        """Bytes of ``task``'s own tensors: dispatchers (threshold offsets included),
        adapters and head."""
        self._check_task(task)
        total = module_bytes(self.heads[task]) if task in self.heads else 0
        for block in self.network.blocks:
            for routed in list(block.dispatchers.values()) + list(block.adapters.values()):
                if task in routed.by_task:
                    total += module_bytes(routed.by_task[task])
        return total

    def base_bytes(self) -> int:
        """Bytes of the shared base (held once)."""
        return sum(t.numel() * t.element_size() for t in base_state(self.network).values())

    def memory(self) -> Dict[str, int]:
        """``base``, each task's bytes, ``total`` and ``separate``: what N single-task models
        (each its own copy of the base) would hold."""
        per_task = {task: self.task_bytes(task) for task in self.sources}
        base = self.base_bytes()
        return dict(base=base, tasks=per_task, total=base + sum(per_task.values()),
                    separate=len(per_task) * base + sum(per_task.values()))

    # ---------------------------------------------------------------- running
    @contextmanager
    def viewing(self, task: str):
        """Inside, the network's sites describe ``task``'s modules (FLOP counters)."""
        self._check_task(task)
        previous, self.routes.viewing = self.routes.viewing, task
        try:
            yield self.network
        finally:
            self.routes.viewing = previous

    @contextmanager
    def routing(self, tasks: Sequence[str]):
        """Inside, the network's batch is ``tasks`` (one name per sample, grouped by task:
        the samples of a task contiguous)."""
        segments, start = [], 0
        for i, task in enumerate(tasks):
            self._check_task(task)
            if i + 1 == len(tasks) or tasks[i + 1] != task:
                segments.append(TaskSegment(task, start, i + 1))
                start = i + 1
        if len({s.task for s in segments}) != len(segments):
            raise ValueError('routing() needs the samples of each task contiguous; use '
                             'MultiTaskDyT.group(tasks) to order them')
        previous, self.routes.segments = self.routes.segments, tuple(segments)
        try:
            yield self.network
        finally:
            self.routes.segments = previous

    def group(self, tasks: Sequence[str]) -> Optional[torch.Tensor]:
        """The order ``(B,)`` that puts the samples of each task together (the first
        task first), or None when they already are."""
        for task in tasks:
            self._check_task(task)
        first_seen = {task: i for i, task in reversed(list(enumerate(tasks)))}
        order = sorted(range(len(tasks)), key=lambda i: (first_seen[tasks[i]], i))
        return None if order == list(range(len(tasks))) else torch.tensor(order)

    def forward(self, images: torch.Tensor, tasks: Sequence[str]) -> DyTOutput:
        if isinstance(tasks, str) or len(tasks) != images.shape[0]:
            raise ValueError(f'forward needs one task name per image: {images.shape[0]} images, '
                             f'tasks={tasks!r}')
        order = self.group(tasks)
        if order is None:
            with self.routing(tasks):
                return self.network(images)
        order = order.to(images.device)
        with self.routing([tasks[i] for i in order.tolist()]):
            out = self.network(images.index_select(0, order))
        back = torch.empty_like(order)
        back[order] = torch.arange(order.numel(), device=order.device)
        return ungroup(out, back)


def ungroup(out: DyTOutput, back: torch.Tensor) -> DyTOutput:
    """``out`` with its samples put back in the caller's order (``back``: where each came
    from)."""
    pick = (lambda t: None if t is None else t.index_select(0, back))
    return DyTOutput(pick(out.tokens), pick(out.masks), tuple(map(pick, out.hidden_states)),
                     pick(out.sources), out.grid)
