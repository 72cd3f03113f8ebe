"""The model zoo's metafiles, generated from ``configs/`` and the paper's figures.

OpenMMLab's ``mim search`` reads ``<package>/.mim/model-index.yml``, which imports one
metafile per config folder (``configs/<folder>/metafile.yml``). Every runnable config (a
``.py`` file under ``configs/`` whose name does not start with ``_``, outside
``configs/_base_``) is one model, in the collection of its method (the name's first field).
Where a config reproduces a row of the paper's tables, its entry carries the paper's
metric (:mod:`.paper_results`) and its trainable parameters, FLOPs and keep rate
(:mod:`.paper_tables`; a row's figures apply to every config of the same method and
backbone in its folder, as the paper prints one figure per method). No entry has a
``Weights`` field: no trained weights ship, and the figures are the paper's.

``tools/misc/make_metafiles.py`` writes the files; :func:`generate` returns their text.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import yaml

from . import paper_tables
from .paper_results import paper_metrics

INDEX = 'model-index.yml'
PAPER = 'https://arxiv.org/abs/2403.11808'  # Dynamic Tuning Towards Parameter and Inference
# Efficiency for ViT Adaptation (mim search shows a string, not a Title/URL mapping's keys)
NO_WEIGHTS = ('none ship; the metrics, parameters and FLOPs are the paper\'s (DyT, NeurIPS '
              '2024), not those of a model trained here')

# method (a config name's first field) -> collection (one word: mim search --model splits on
# spaces); the first prefix that matches wins
COLLECTIONS: Tuple[Tuple[str, str, str], ...] = (
    ('dyt-moe', 'DyT-MoE', 'DyT with a mixture of N adapters (the paper\'s DyT†)'),
    ('dyt-lora', 'DyT-LoRA', 'DyT\'s token dispatcher with LoRA, a method beyond the paper'),
    ('dyt', 'DyT', 'Dynamic Tuning: adapters and a learned token dispatcher that lets '
     'tokens skip the MLP'),
    ('dynamic-full', 'Dynamic-Full', 'DyT\'s token dispatcher with every ViT weight tuned'),
    ('adaptformer', 'AdaptFormer', 'parallel bottleneck adapters, no dispatch'),
    ('lora', 'LoRA', 'low-rank updates of the attention\'s q and v projections'),
    ('vpt', 'VPT', 'deep visual prompt tuning'),
    ('full', 'Full-tuning', 'every ViT weight tuned, no dispatch'),
    ('linear-probe', 'Linear-probe', 'frozen ViT, only the head trained'),
    ('vit', 'Source-ViT', 'the demos\' plain ViT, pre-trained on the source split'),
)

# config folder -> task, as OpenMMLab's metafiles name it
TASKS = {'image': 'Image Classification', 'vtab1k': 'Image Classification',
         'demo': 'Image Classification', 'seg': 'Semantic Segmentation',
         'video': 'Action Recognition', 'det': 'Object Detection'}

# a config name's last field -> data set, as the paper names it
DATASETS = {'cifar100': 'CIFAR-100', 'svhn': 'SVHN', 'food101': 'Food-101',
            'fgvc-aircraft': 'FGVC-Aircraft', 'oxford-pets': 'Oxford-IIIT Pets',
            'stanford-cars': 'Stanford Cars', 'ade20k-512x512': 'ADE20K',
            'coco-stuff164k-512x512': 'COCO-Stuff 164k', 'kinetics400-rgb': 'Kinetics-400',
            'sthv2-rgb': 'Something-Something V2', 'coco': 'COCO',
            'digits-source': 'digits (demo, source split)',
            'digits-target': 'digits (demo, target split)',
            'shapes-source': 'shapes (demo, source split)',
            'shapes-target': 'shapes (demo, target split)', 'moving-shapes': 'moving shapes (demo)'}

METRIC_TASKS = {'mask AP': 'Instance Segmentation'}


def runnable_configs(root: str) -> List[str]:
    """Every runnable config under ``root/configs``, relative to ``root``, sorted."""
    found = []
    for dirpath, dirnames, names in os.walk(osp.join(root, 'configs')):
        dirnames[:] = sorted(d for d in dirnames if d != '_base_' and not d.startswith('.'))
        found += [osp.relpath(osp.join(dirpath, n), root).replace(os.sep, '/')
                  for n in names if n.endswith('.py') and not n.startswith('_')]
    return sorted(found)


def collection_of(config: str) -> str:
    method = osp.basename(config).split('_')[0]
    for prefix, name, _ in COLLECTIONS:
        # a prefix ends where the name ends, at a '-' or at a number ('dyt-moe4', 'dyt-r0.5')
        if re.match(re.escape(prefix) + r'($|-|\d)', method):
            return name
    raise ValueError(f'{config}: its method {method!r} starts with none of the known ones '
                     f'({", ".join(p for p, _, _ in COLLECTIONS)}); add it to '
                     f'dyt_mm.analysis.metafiles.COLLECTIONS')


def dataset_of(config: str) -> str:
    last = osp.splitext(osp.basename(config))[0].split('_')[-1]
    if last.startswith('vtab1k-'):
        return f'VTAB-1K {last[len("vtab1k-"):]}'
    return DATASETS.get(last, last)


def family(config: str) -> Tuple[str, str, str]:
    """(folder, method, backbone or head): the configs that share one paper figure."""
    fields = osp.basename(config).split('_')
    return osp.dirname(config), fields[0], fields[1] if len(fields) > 2 else ''


def paper_figures() -> Dict[Tuple[str, str, str], dict]:
    """Family -> the first row of :mod:`.paper_tables` that a config of it builds as is."""
    figures: Dict[Tuple[str, str, str], dict] = {}
    for row in paper_tables.ROWS:
        if row.get('options'):  # a row built from another config by options has no config
            continue
        figures.setdefault(family(row['config']), row)
    return figures


def model_entry(config: str, row: Optional[dict], metrics: Dict[str, Tuple[int, str]]) -> dict:
    folder = config.split('/')[1]
    metadata = {'Training Data': dataset_of(config)}
    if row is not None:
        if row['params'] is not None:
            metadata['Trainable Parameters (M)'] = float(row['params'])
        metadata['FLOPs (G)'] = float(row['gflops'])
        if row.get('rate') is not None:
            metadata['Keep Rate'] = row['rate']
        metadata['Paper Table Cost'] = row['table']
    entry = dict(Name=osp.splitext(osp.basename(config))[0], Metadata=metadata,
                 **{'In Collection': collection_of(config)})
    if metrics:
        task = TASKS.get(folder, folder)
        entry['Results'] = [
            dict(Task=METRIC_TASKS.get(name, task), Dataset=dataset_of(config),
                 Metrics={name: float(value)}) for name, (_, value) in metrics.items()]
        metadata['Paper Table'] = next(iter(metrics.values()))[0]
    entry['Config'] = config
    return entry


def generate(root: str) -> Dict[str, str]:
    """Path relative to ``root`` -> the text of ``model-index.yml`` and every metafile."""
    configs = runnable_configs(root)
    names: Dict[str, str] = {}
    for config in configs:
        name = osp.splitext(osp.basename(config))[0]
        if name in names:
            raise ValueError(f'two configs are named {name}: {names[name]} and {config}; '
                             'mim names a model by its config\'s name')
        names[name] = config
    figures, metrics = paper_figures(), paper_metrics()
    # the paper prints some results for data sets that not every method has a config for;
    # a result whose method and backbone have no config at all is a misspelt name
    families = {family(config) for config in configs}
    unknown = sorted(c for c in metrics if c not in configs and family(c) not in families)
    if unknown:
        raise ValueError(f'paper results for configs that do not exist: {", ".join(unknown)}')
    by_folder: Dict[str, List[dict]] = {}
    for config in configs:
        folder = config.split('/')[1]
        by_folder.setdefault(folder, []).append(
            model_entry(config, figures.get(family(config)), metrics.get(config, {})))
    header = ('# Generated by tools/misc/make_metafiles.py from configs/ and '
              'dyt_mm/analysis/paper_{tables,results}.py: do not edit.\n'
              '# No trained weights ship (no Weights entries); the figures are the paper\'s.\n')
    files = {f'configs/{folder}/metafile.yml': header + dump({'Models': models})
             for folder, models in sorted(by_folder.items())}
    used = {entry['In Collection'] for models in by_folder.values() for entry in models}
    collections = [dict(Name=name, Metadata={'Trained Weights': NO_WEIGHTS, 'Method': about},
                        Paper=PAPER, README='docs/toolbox_tools.md')
                   for _, name, about in COLLECTIONS if name in used]
    files[INDEX] = header + dump({'Collections': collections, 'Import': sorted(files)})
    return files


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def stale(root: str) -> List[str]:
    """The metafiles under ``root`` that differ from :func:`generate`'s, or are missing or
    left over (a metafile in a folder with no runnable config)."""
    files = generate(root)
    out = [path for path, text in files.items() if not osp.isfile(osp.join(root, path))
           or open(osp.join(root, path), encoding='utf-8').read() != text]
    for dirpath, dirnames, names in os.walk(osp.join(root, 'configs')):
        path = osp.relpath(osp.join(dirpath, 'metafile.yml'), root).replace(os.sep, '/')
        if 'metafile.yml' in names and path not in files:
            out.append(path)
    return sorted(out)


def write(root: str) -> List[str]:
    """Write every file (only those whose text changed) and delete left-over metafiles;
    returns the paths written or deleted."""
    changed = stale(root)
    files = generate(root)
    for path in changed:
        full = osp.join(root, path)
        if path in files:
            with open(full, 'w', encoding='utf-8') as f:
                f.write(files[path])
        else:
            os.remove(full)
    return changed


def entries(index_path: str) -> Dict[str, str]:
    """Model name -> config in a written model index (read the way mim reads it)."""
    from modelindex.load_model_index import load
    return {model.name: model.config for model in load(index_path).models}
