"""`make demo-multitask`: one frozen ViT serving several DyT tasks in one mixed batch.

1. The digits demo's source ViT (stage 1 of `make demo`, reused; trained here
   only if it is missing) is the frozen base.
2. DyT adapts it to each target domain, made from the digits target domain by
   an image transform (dyt_mm.demo.multitask): as is, mirrored, thick strokes.
   Each adaptation is the digits demo's stage 2 (same config and schedule;
   --epochs shortens it on a busy machine, the cosine schedule ending there);
   a finished one is reused by later runs (delete <work dir>/<domain>.pth to
   redo it).
3. The tasks are served by one multi-task model: the validation images of all
   domains, interleaved, in mixed batches. Printed per task: accuracy of the
   mixed batch and of the task's own model (they agree prediction for
   prediction), then the throughput of a mixed batch against the single-task
   models run one after another on their own sub-batches, and memory against
   separate models.
"""
import json
import os
import os.path as osp
import shutil
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401,E402  (compatibility layer first)
import dyt_mm.cls  # noqa: F401,E402
import torch  # noqa: E402
from dyt_mm.analysis.inputs import read_file  # noqa: E402
from dyt_mm.analysis.multitask_speed import time_serving  # noqa: E402
from dyt_mm.analysis.timing import reliability, throughputs  # noqa: E402
from dyt_mm.apis import inference, init_model, init_multitask_model  # noqa: E402
from dyt_mm.demo.digits import write_digits  # noqa: E402
from dyt_mm.demo.multitask import val_files, write_domains  # noqa: E402
from dyt_mm.demo.stages import adapt, demo_parser, pretrain_source, print_table  # noqa: E402
from dyt_mm.utils.cli import int_at_least  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

SOURCE_CONFIG = osp.join(CHECKOUT, 'configs/demo/vit-tiny-p4_digits-source.py')
TARGET_CONFIG = osp.join(CHECKOUT, 'configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py')
BATCH = 96  # a mixed batch: 32 images of each of three tasks
EPOCHS = 20  # the digits demo's stage 2


def schedule_config(work_dir: str, epochs: int) -> str:
    """The digits stage-2 config, or one that ends its schedule after ``epochs``."""
    if epochs == EPOCHS:
        return TARGET_CONFIG
    path = osp.join(work_dir, f'dyt-r0.5_digits-target_{epochs}ep.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = [{TARGET_CONFIG!r}]\n"
                f"train_cfg = dict(by_epoch=True, max_epochs={epochs}, val_interval={epochs})\n"
                "param_scheduler = [\n"
                "    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,\n"
                "         convert_to_iter_based=True),\n"
                "    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, "
                f"end={max(epochs, 2)},\n"
                "         convert_to_iter_based=True),\n]\n")
    return path


def adapted_checkpoint(domain: str, domain_root: str, work_dir: str, base: str,
                       config: str) -> str:
    """The DyT checkpoint of ``domain``: an earlier run's, else a new stage-2 run's."""
    kept = osp.join(work_dir, f'{domain}.pth')
    if osp.isfile(kept):
        print(f'[{domain}] reusing {kept}')
        return kept
    runner, metrics = adapt(config, domain_root, osp.join(work_dir, domain), base,
                            what=f'DyT ({domain})', progress=True)
    print(f"[{domain}] own test accuracy {metrics['accuracy/top1']:.2f} %")
    with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    shutil.copyfile(last, kept + '.part')
    os.replace(kept + '.part', kept)  # a killed copy leaves no half file under the name
    return kept


def task_config(domain_root: str, base: str) -> Config:
    cfg = Config.fromfile(TARGET_CONFIG)
    cfg.model.backbone.init_cfg.checkpoint = base
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = domain_root
    return cfg


def label_of(path: str) -> int:
    return int(osp.basename(osp.dirname(path)))


def own_predictions(model, cfg: Config, files):
    """The single-task model's own test step on ``files``, in batches."""
    labels = []
    for start in range(0, len(files), BATCH):
        data = pseudo_collate([read_file(cfg, f) for f in files[start:start + BATCH]])
        labels += [int(s.pred_label) for s in model.test_step(data)]
    return labels


def main():
    parser = demo_parser(__doc__, 'data/digits', 'work_dirs/multitask_demo')
    parser.add_argument('--domains', nargs='+', default=['target', 'mirrored', 'thick'])
    parser.add_argument('--epochs', type=int_at_least(1), default=EPOCHS,
                        help=f'epochs of each adaptation (default {EPOCHS}, as the digits demo)')
    args = parser.parse_args()
    init_default_scope('mmpretrain')
    write_digits(args.data_root)
    roots = write_domains(args.data_root, osp.join(args.data_root, 'multitask'), args.domains)
    base = args.base or pretrain_source(SOURCE_CONFIG, args.data_root, 'work_dirs/digits_demo',
                                        'a ViT', 'accuracy/top1', progress=True)
    os.makedirs(args.work_dir, exist_ok=True)
    config = schedule_config(args.work_dir, args.epochs)
    checkpoints = {d: adapted_checkpoint(d, roots[d], args.work_dir, base, config)
                   for d in args.domains}
    cfgs = {d: task_config(roots[d], base) for d in args.domains}

    print(f'[serve] {len(args.domains)} tasks on one frozen ViT', flush=True)
    model = init_multitask_model([(cfgs[d], checkpoints[d]) for d in args.domains],
                                 names=args.domains)
    singles = {d: init_model(cfgs[d], checkpoints[d]) for d in args.domains}
    files = {d: val_files(roots[d]) for d in args.domains}
    # the domains' images interleaved: every mixed batch holds every task
    mixed = [(f, d) for group in zip(*files.values()) for f, d in zip(group, args.domains)]
    predicted = {}
    with torch.no_grad():
        for start in range(0, len(mixed), BATCH):
            chunk = mixed[start:start + BATCH]
            samples = inference(model, [f for f, _ in chunk], tasks=[d for _, d in chunk])
            predicted.update({f: int(s.pred_label) for (f, _), s in zip(chunk, samples)})
        rows = []
        for d in args.domains:
            served = [f for f, task in mixed if task == d]
            own = own_predictions(singles[d], cfgs[d], served)
            together = [predicted[f] for f in served]
            truth = [label_of(f) for f in served]
            accuracy = (lambda p: 100 * sum(a == b for a, b in zip(p, truth)) / len(truth))
            same = sum(a == b for a, b in zip(own, together))
            rows.append((f'{d}: accuracy mixed batch / own model ({len(served)} images)',
                         f'{accuracy(together):.2f} % / {accuracy(own):.2f} % '
                         f'({same}/{len(served)} predictions identical)'))

    print(f'[speed] a mixed batch of {BATCH} vs the single-task models in turn', flush=True)
    share = BATCH // len(args.domains)
    per_task = [pseudo_collate([read_file(cfgs[d], f) for f in files[d][:share]])
                for d in args.domains]
    inputs = torch.cat([singles[d].data_preprocessor(data, False)['inputs']
                        for d, data in zip(args.domains, per_task)])
    tasks = [d for d in args.domains for _ in range(share)]
    order = [i * share + j for j in range(share) for i in range(len(args.domains))]
    timings, timings_b1, _ = time_serving(model.core, [s.backbone.vit for s in singles.values()],
                                          inputs[order], [tasks[i] for i in order],
                                          num_iters=10, warmup=2)
    speed = dict(**throughputs(timings, BATCH), **throughputs(timings_b1, 1),
                 **reliability(timings))
    memory = model.core.memory()
    mib = 2**20
    note = (f" [UNRELIABLE: {'; '.join(speed['unreliable'])}]" if speed['unreliable'] else '')
    rows += [
        (f'throughput, mixed batch of {BATCH} ({len(args.domains)} tasks)',
         f"{speed['throughput_mixed']:.1f} images/s"),
        (f'throughput, {len(args.domains)} models in turn on {share} images each',
         f"{speed['throughput_sequential']:.1f} images/s "
         f"(mixed is {speed['throughput_mixed'] / speed['throughput_sequential']:.2f}x)"),
        (f'throughput, one model on {BATCH} images of its task',
         f"{speed['throughput_single']:.1f} images/s "
         f"(mixed is {speed['throughput_mixed'] / speed['throughput_single']:.2f}x)"),
        ('throughput, batch 1: mixed / single', f"{speed['throughput_mixed_b1']:.1f} / "
         f"{speed['throughput_single_b1']:.1f} images/s"),
        ('machine load (1-minute average)', f"{speed['load_average']:.2f}{note}"),
        ('memory: base once + tasks', f"{memory['base'] / mib:.2f} MiB + " + ' + '.join(
            f'{b / mib:.3f}' for b in memory['tasks'].values()) +
         f" MiB = {memory['total'] / mib:.2f} MiB"),
        (f'memory: {len(args.domains)} separate models',
         f"{memory['separate'] / mib:.2f} MiB (multi-task holds "
         f"{memory['total'] / memory['separate']:.2f}x)"),
    ]
    print_table('DyT multi-task demo: one frozen ViT, one mixed batch', rows)
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(dict(rows=rows, speed=speed, memory=memory), f, indent=1, default=str)


if __name__ == '__main__':
    main()
