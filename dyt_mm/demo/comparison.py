"""Several methods adapted from one source model on a demo, each for some seeds, then measured
side by side (``make demo-compare``, ``make demo-dyt-lora``).

Every (method, seed) run trains and tests through :func:`.stages.adapt` in its own folder
``<work dir>/<method>/seed<k>/`` and leaves ``result.json`` there: the test metric, the test
set's keep rate, the saved config and the last checkpoint. A run whose ``result.json`` exists
is not trained again, so a killed comparison resumes where it stopped. The speed and cost
columns come from :func:`dyt_mm.analysis.compare.compare_candidates` on the first seed's
models, rebuilt from their files (LoRA merged, each in its test mode, interleaved).
"""
import json
import os.path as osp
import statistics
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from ..analysis.compare import Candidate, compare_candidates, comparison_table
from ..analysis.loading import build_model, load_config
from ..utils.checkpoint import atomic_write_text
from .stages import adapt, figure_at_test

RESULT = 'result.json'


class Method(NamedTuple):
    name: str  # the table's row name
    config: str  # the stage-2 config file
    seeds: int = 1  # trained with seeds 0 .. seeds - 1


def method_dir(work_dir: str, config: str) -> str:
    """A method's folder: the config's method prefix (its name up to the first ``_``)."""
    return osp.join(work_dir, osp.basename(config).split('_')[0])


def run_once(method: Method, seed: int, data_root: str, work_dir: str, base: Optional[str],
             metric: str, scale: float = 1.0, say: Callable[[str], None] = print) -> Dict:
    """Train and test ``method`` with ``seed`` unless its ``result.json`` exists; the record.

    ``metric``: the test metric's key; ``scale`` turns it into % (mmaction's top-1 is a
    fraction)."""
    folder = osp.join(method_dir(work_dir, method.config), f'seed{seed}')
    record = osp.join(folder, RESULT)
    if osp.isfile(record):
        with open(record) as f:
            result = json.load(f)
        say(f'[{method.name}, seed {seed}] done before: {result["metric"]:.1f} ({record})')
        return result
    runner, metrics = adapt(method.config, data_root, folder, base, method.name, progress=True,
                            cfg_options={'randomness.seed': seed})
    config = osp.join(runner.work_dir, 'config.py')
    runner.cfg.dump(config)
    # mmengine's CheckpointHook names the file it saved last in ``last_checkpoint``
    with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    # float(): mmseg's metrics are numpy scalars, which json cannot write
    result = dict(method=method.name, seed=seed, metric=float(scale * metrics[metric]),
                  keep_rate=float(figure_at_test(runner, 'keep_rate')), config=config,
                  checkpoint=checkpoint)
    atomic_write_text(json.dumps(result, indent=1), record)
    say(f'[{method.name}, seed {seed}] {metric} {result["metric"]:.1f}, keep rate '
        f'{result["keep_rate"]:.3f}')
    return result


def run_methods(methods: Sequence[Method], data_root: str, work_dir: str, base: Optional[str],
                metric: str, scale: float = 1.0,
                say: Callable[[str], None] = print) -> List[List[Dict]]:
    """Every method's runs, seed 0 of each method first (then seeds 1, 2, ...), so the
    single-seed comparison is complete before the extra seeds start."""
    results: List[List[Dict]] = [[] for _ in methods]
    for seed in range(max(m.seeds for m in methods)):
        for i, method in enumerate(methods):
            if seed < method.seeds:
                results[i].append(run_once(method, seed, data_root, work_dir, base, metric,
                                           scale, say))
    return results


def mean_std(values: Sequence[float], digits: int) -> str:
    """``mean ± sample std`` (the mean alone for one value)."""
    if len(values) == 1:
        return f'{values[0]:.{digits}f}'
    return f'{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}'


def measure(methods: Sequence[Method], results: Sequence[Sequence[Dict]], metric_name: str,
            batch_size: int, num_iters: int, train: bool = True,
            say: Callable[[str], None] = print) -> Dict:
    """The first seed's models side by side; the table with the metric and the test keep
    rate (mean ± std over the seeds) in front of the cost columns."""
    candidates = [Candidate(m.name, *_config_and_model(runs[0]))
                  for m, runs in zip(methods, results)]
    report = compare_candidates(candidates, batch_size=batch_size, num_iters=num_iters,
                                train=train, progress=say)
    table = comparison_table(report, [m.name for m in methods])
    header = table[0]
    header[header.index('keep rate')] = 'keep rate (batch)'
    header[1:1] = ['seeds', metric_name, 'test keep rate']
    for row, runs in zip(table[1:], results):
        row[1:1] = [str(len(runs)), mean_std([r['metric'] for r in runs], 1),
                    mean_std([r['keep_rate'] for r in runs], 3)]
    report['table'] = table
    return report


def _config_and_model(result: Dict):
    cfg = load_config(result['config'])
    return cfg, build_model(cfg, result['checkpoint'])
