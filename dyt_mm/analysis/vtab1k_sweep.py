"""Train and test one method family on VTAB-1K tasks over seeds; the paper's Table-3 row.

The logic behind ``tools/analysis/vtab1k_sweep.py``. Each (task, seed) runs in
``<work_dir>/<task>/seed<k>``: training (in this process, or through
``tools/dist_train.sh`` / ``tools/slurm_train.sh``), then the test split,
whose top-1, trainable parameters and GFLOPs go to ``result.json`` there. A
run with ``result.json`` is skipped; a run killed before it resumes from its
last checkpoint (mmengine's resume, through ``last_checkpoint``).

The row is the paper's: 19 accuracies, the Natural / Specialized /
Structured means (each the mean of its tasks), and the "Mean", which is the
mean of the three group means (not of the 19 tasks; dyt-paper-facts.md,
verified on every Table-3 row); the trainable parameters of the ViT (head
excluded, the PEFT convention) and the mean GFLOPs per test image, both
averaged over the tasks. Several seeds give mean ± sample std of every
column, each computed per seed first.
"""
import csv
import io
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config

from ..cls.vtab1k import GROUPS, TASK_BY_FOLDER, TASKS, check_tasks
from ..utils.checkpoint import atomic_write_text
from .loading import dyt_parts

FAMILIES = ('dyt-r0.5', 'dyt-r0.7', 'dyt-r0.9', 'dyt-lora-r8-r0.5', 'dyt-lora-r8-mlp-d8-r0.5',
            'adaptformer-d8', 'lora-r8', 'vpt-deep', 'full', 'linear-probe')
LAUNCHERS = ('none', 'pytorch', 'slurm')
RESULT = 'result.json'
TOP1 = 'accuracy/top1'


def task_config(config_dir: str, family: str, task: str, backbone: str = 'vit-b16-in21k') -> str:
    """``configs/vtab1k/<family>_<backbone>_vtab1k-<task>.py``, which must exist."""
    check_tasks([task])
    path = osp.join(config_dir, f'{family}_{backbone}_vtab1k-{TASK_BY_FOLDER[task].config}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no config for {family} on {backbone}, task {task}: {path} '
                                f'(families: {", ".join(FAMILIES)})')
    return path


def run_config(config: str, work_dir: str, seed: int, override: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> Config:
    """The task config with the override config and options merged, the seed and work dir."""
    cfg = Config.fromfile(config)
    if override:
        cfg.merge_from_dict(Config.fromfile(override).to_dict())
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.merge_from_dict({'randomness.seed': seed})
    cfg.work_dir = work_dir
    return cfg


def has_checkpoint(work_dir: str) -> bool:
    return osp.isfile(osp.join(work_dir, 'last_checkpoint'))


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def build_runner(cfg: Config):
    from mmengine.registry import RUNNERS

    from ..apis import init_default_scope_of
    init_default_scope_of(cfg)
    cfg.setdefault('runner_type', 'DyTRunner')
    # one Runner per run in this process: its logger, visualizer and message hub are
    # global instances named by the experiment, so every run gets a name of its own
    cfg.experiment_name = f'{osp.basename(osp.dirname(cfg.work_dir))}_' \
        f'{osp.basename(cfg.work_dir)}_{time.strftime("%Y%m%d_%H%M%S")}_{time.monotonic_ns()}'
    return RUNNERS.build(cfg)


def tested_figures(runner) -> Dict:
    """Top-1 of the test split, trainable ViT parameters and test GFLOPs of a runner."""
    metrics = runner.test()
    if TOP1 not in metrics:
        raise ValueError(f'the test metrics have no {TOP1!r}: {sorted(metrics)}')
    model = getattr(runner.model, 'module', runner.model)
    _, vit = dyt_parts(model)
    trainable = sum(p.numel() for p in vit.parameters() if p.requires_grad)
    hub = runner.message_hub
    gflops = hub.get_scalar('test/gflops').current() if 'test/gflops' in hub.log_scalars \
        else None
    return dict(accuracy=float(metrics[TOP1]), params_m=trainable / 1e6,
                gflops=None if gflops is None else float(gflops))


def train_in_process(cfg: Config) -> Dict:
    cfg.resume, cfg.load_from = has_checkpoint(cfg.work_dir), None
    resumed_from = last_checkpoint(cfg.work_dir) if cfg.resume else None
    runner = build_runner(cfg)
    runner.train()
    return dict(tested_figures(runner), resumed_from=resumed_from)


def launcher_command(launcher: str, tools_dir: str, config: str, work_dir: str, gpus: int,
                     partition: Optional[str], job_name: str) -> List[str]:
    if launcher == 'pytorch':
        command = ['bash', osp.join(tools_dir, 'dist_train.sh'), config, str(gpus),
                   '--work-dir', work_dir]
    elif launcher == 'slurm':
        if not partition:
            raise ValueError('--launcher slurm needs --partition')
        command = ['bash', osp.join(tools_dir, 'slurm_train.sh'), partition, job_name, config,
                   work_dir]
    else:
        raise ValueError(f'unknown launcher {launcher!r}; allowed: {", ".join(LAUNCHERS)}')
    return command + (['--resume'] if has_checkpoint(work_dir) else [])


def train_launched(cfg: Config, launcher: str, tools_dir: str, gpus: int,
                   partition: Optional[str], job_name: str) -> Dict:
    """Train through the launcher script on the dumped config, then test the last
    checkpoint in this process."""
    os.makedirs(cfg.work_dir, exist_ok=True)
    config = osp.join(cfg.work_dir, 'sweep_config.py')
    cfg.dump(config)
    resumed_from = last_checkpoint(cfg.work_dir) if has_checkpoint(cfg.work_dir) else None
    command = launcher_command(launcher, tools_dir, config, cfg.work_dir, gpus, partition,
                               job_name)
    # the scripts run $PYTHON (default: python on PATH); this interpreter has the toolboxes
    env = dict(os.environ, GPUS=str(gpus))
    env.setdefault('PYTHON', sys.executable)
    done = subprocess.run(command, env=env)
    if done.returncode != 0:
        raise RuntimeError(f'training failed (exit {done.returncode}): {" ".join(command)}; '
                           'run the sweep again to resume it')
    test_cfg = Config.fromfile(config)
    test_cfg.load_from, test_cfg.resume = last_checkpoint(cfg.work_dir), False
    test_cfg.launcher = 'none'  # the training run's dump of the config says its launcher
    test_cfg.train_dataloader = test_cfg.train_cfg = test_cfg.optim_wrapper = None
    test_cfg.param_scheduler = None
    return dict(tested_figures(build_runner(test_cfg)), resumed_from=resumed_from)


def run_sweep(config_dir: str, family: str, tasks: Sequence[str], seeds: Sequence[int],
              work_dir: str, backbone: str = 'vit-b16-in21k', override: Optional[str] = None,
              cfg_options: Optional[dict] = None, launcher: str = 'none',
              tools_dir: Optional[str] = None, gpus: int = 1, partition: Optional[str] = None,
              progress: Callable[[str], None] = print) -> List[Dict]:
    """Every (task, seed) run, finished ones read back; returns their results."""
    check_tasks(tasks)
    if launcher not in LAUNCHERS:
        raise ValueError(f'unknown launcher {launcher!r}; allowed: {", ".join(LAUNCHERS)}')
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'give one or more distinct seeds, got {list(seeds)}')
    tasks = [t.folder for t in TASKS if t.folder in tasks]  # the paper's column order
    configs = {task: task_config(config_dir, family, task, backbone) for task in tasks}
    results, total = [], len(tasks) * len(seeds)
    for i, (task, seed) in enumerate(((t, s) for t in tasks for s in seeds), 1):
        run_dir = osp.join(work_dir, task, f'seed{seed}')
        result_path = osp.join(run_dir, RESULT)
        if osp.isfile(result_path):
            progress(f'[{i}/{total}] {task} seed {seed}: done before, skipped')
            with open(result_path) as f:
                results.append(json.load(f))
            continue
        state = 'resuming' if has_checkpoint(run_dir) else 'training'
        progress(f'[{i}/{total}] {task} seed {seed}: {state} in {run_dir}')
        cfg = run_config(configs[task], run_dir, seed, override, cfg_options)
        if launcher == 'none':
            figures = train_in_process(cfg)
        else:
            figures = train_launched(cfg, launcher, tools_dir, gpus, partition,
                                     f'vtab1k-{family}-{task}-s{seed}')
        result = dict(task=task, seed=seed, family=family, config=configs[task], **figures)
        atomic_write_text(json.dumps(result, indent=1) + '\n', result_path)
        progress(f'[{i}/{total}] {task} seed {seed}: top-1 {result["accuracy"]:.2f}')
        results.append(result)
    return results


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def seed_row(results: Sequence[Dict]) -> Dict[str, Optional[float]]:
    """One seed's row: per-task top-1, group means, the mean of the group means, params
    and GFLOPs (means over the tasks)."""
    by_task = {r['task']: r for r in results}
    row = {task.column: by_task[task.folder]['accuracy'] for task in TASKS
           if task.folder in by_task}
    groups = {}
    for group in GROUPS:
        accuracies = [by_task[t.folder]['accuracy'] for t in TASKS
                      if t.group == group and t.folder in by_task]
        if accuracies:
            groups[group] = mean(accuracies)
    row.update(groups)
    row['Mean'] = mean(list(groups.values()))
    row['Params (M)'] = mean([r['params_m'] for r in results])
    gflops = [r['gflops'] for r in results]
    row['GFLOPs'] = None if None in gflops else mean(gflops)
    return row


def table3_row(results: Sequence[Dict]) -> Dict:
    """Mean and sample std over seeds of every column of :func:`seed_row`; ``complete``
    says whether all 19 tasks are in (else the group means cover the tasks given)."""
    seeds = sorted({r['seed'] for r in results})
    tasks = {r['task'] for r in results}
    for seed in seeds:
        have = {r['task'] for r in results if r['seed'] == seed}
        if have != tasks:
            raise ValueError(f'seed {seed} lacks results for {sorted(tasks - have)}')
    rows = [seed_row([r for r in results if r['seed'] == seed]) for seed in seeds]
    columns = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if None in values:
            columns[key] = dict(mean=None, std=None)
            continue
        columns[key] = dict(mean=mean(values),
                            std=statistics.stdev(values) if len(values) > 1 else None)
    groups = [g for g in GROUPS if g in columns]
    return dict(columns=columns, seeds=seeds, per_seed=rows, groups=groups,
                complete=len(tasks) == len(TASKS))


DECIMALS = {'Natural': 2, 'Specialized': 2, 'Structured': 2, 'Mean': 2, 'Params (M)': 2,
            'GFLOPs': 2}  # the paper's: 1 decimal per task, 2 for the rest
COSTS = ('Params (M)', 'GFLOPs')


def cell(column: str, figure: Dict) -> str:
    if figure['mean'] is None:
        return '-'
    digits = DECIMALS.get(column, 1)
    if column in COSTS and abs(figure['mean']) < 0.1:
        digits = 4  # a small model's cost would print as 0.00
    text = f'{figure["mean"]:.{digits}f}'
    return text if figure['std'] is None else f'{text} ± {figure["std"]:.{digits}f}'


def row_markdown(row: Dict, method: str) -> str:
    columns = list(row['columns'])
    lines = ['| Method | ' + ' | '.join(columns) + ' |', '|' + '---|' * (len(columns) + 1),
             f'| {method} | ' + ' | '.join(cell(c, row['columns'][c]) for c in columns) + ' |']
    return '\n'.join(lines)


def row_csv(row: Dict, method: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = list(row['columns'])
    writer.writerow(['method', 'seeds'] + [f'{c} {part}' for c in columns
                                           for part in ('mean', 'std')])
    values = [method, ' '.join(map(str, row['seeds']))]
    for c in columns:
        figure = row['columns'][c]
        values += ['' if figure[part] is None else repr(figure[part]) for part in ('mean', 'std')]
    writer.writerow(values)
    return out.getvalue()


def runs_csv(results: Sequence[Dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(['task', 'seed', 'accuracy', 'params_m', 'gflops', 'config'])
    for r in sorted(results, key=lambda r: ([t.folder for t in TASKS].index(r['task']),
                                            r['seed'])):
        writer.writerow([r['task'], r['seed'], repr(r['accuracy']), repr(r['params_m']),
                         '' if r['gflops'] is None else repr(r['gflops']), r['config']])
    return out.getvalue()


def write_reports(results: Sequence[Dict], work_dir: str, method: str) -> Dict[str, str]:
    """``table3_row.{md,csv}`` and ``runs.csv`` in ``work_dir`` (derived from the results,
    so rewritten on every sweep); returns the markdown and the paths."""
    row = table3_row(results)
    markdown = row_markdown(row, method)
    paths = {name: osp.join(work_dir, name)
             for name in ('table3_row.md', 'table3_row.csv', 'runs.csv')}
    atomic_write_text(markdown + '\n', paths['table3_row.md'])
    atomic_write_text(row_csv(row, method), paths['table3_row.csv'])
    atomic_write_text(runs_csv(results), paths['runs.csv'])
    return dict(markdown=markdown, row=row, **paths)
