"""The accuracy of the demo models in float32, bfloat16 and int8: `make precision-table`.

    python tools/analysis/precision_table.py [--digits RUN_DIR] [--seg RUN_DIR]
                                             [--video RUN_DIR] [--demos digits seg video]
                                             [--out-dir DIR]

Each demo's trained run (default: the newest one `make demo`, `make demo-seg` and `make
demo-video` wrote under work_dirs/; run this from the directory they ran in, since their
configs name the data and the frozen base relative to it) is tested three times on its test
set, through the Runner (tools/test.py --precision): in float32, with the DyT network in
bfloat16, with the frozen base's linear layers in int8 in eager PyTorch (the int8 file's
arithmetic, dyt_mm.deploy.precision.Int8Linear), and as the int8 ONNX file itself in ONNX
Runtime (what tools/deploy/export.py --precision int8 writes; tools/test.py --precision int8
--runtime onnxruntime). Printed per demo and run: the
metric (top-1 / mIoU, in points) and its change from float32, the test keep rate and its
change, the share of keep decisions (sample, site, token) that differ from float32's and the
share of test samples with any such flip; then one JSON line. The test runs' logs go to
--out-dir. A missing run is an error that names the make target that makes it.
"""
import argparse
import glob
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
import dyt_mm.demo.stages  # noqa: F401  (registers the demos' progress hook, in their configs)
from dyt_mm.analysis.reports import format_rows, json_line
from dyt_mm.analysis.toolbox import init_default_scope_of
from dyt_mm.deploy.evaluate import evaluate_precision, metric_table
from mmengine.config import Config

# (label, precision, runtime) of each test run; the first is the reference
RUNS = [('fp32', 'fp32', 'eager'), ('bf16', 'bf16', 'eager'), ('int8 eager', 'int8', 'eager'),
        ('int8 ONNX Runtime', 'int8', 'onnxruntime')]
# demo: (runs under work_dirs/, the make target writing them, metric, scale to points)
DEMOS = {
    'digits': ('work_dirs/digits_demo/target_*', 'make demo', 'accuracy/top1', 1.0),
    'seg': ('work_dirs/seg_demo/target_*', 'make demo-seg', 'mIoU', 1.0),
    'video': ('work_dirs/video_demo/2*', 'make demo-video', 'acc/top1', 100.0),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Demo accuracy in fp32, bf16 and int8')
    for demo, (pattern, target, _, _) in DEMOS.items():
        parser.add_argument(f'--{demo}', metavar='RUN_DIR',
                            help=f'the {demo} demo\'s trained run (default: the newest '
                            f'{pattern}, from {target})')
    parser.add_argument('--demos', nargs='+', choices=tuple(DEMOS), default=list(DEMOS),
                        help='the demos to measure (default: all)')
    parser.add_argument('--out-dir', default='work_dirs/precision_table',
                        help='where the test runs write their logs')
    return parser.parse_args(argv)


def trained_run(demo: str, run_dir) -> tuple:
    """``(config, checkpoint)`` of the demo's run: the config the run dumped into its
    folder and the checkpoint its ``last_checkpoint`` names."""
    pattern, target, _, _ = DEMOS[demo]
    if run_dir is None:
        runs = sorted(d for d in glob.glob(pattern) if osp.isdir(d))
        if not runs:
            raise SystemExit(f'error: no {demo} demo run found ({pattern} from here, '
                             f'{osp.abspath(".")}); run `{target}` first, or give --{demo} '
                             'RUN_DIR')
        run_dir = runs[-1]
    configs = glob.glob(osp.join(run_dir, '*.py'))
    last = osp.join(run_dir, 'last_checkpoint')
    if len(configs) != 1 or not osp.isfile(last):
        raise SystemExit(f'error: {run_dir} is not a finished {demo} demo run (it needs the '
                         'one config the run dumped and a last_checkpoint file); run '
                         f'`{target}` to the end, or give --{demo} RUN_DIR')
    with open(last) as f:
        checkpoint = f.read().strip()
    if not osp.isfile(checkpoint):
        raise SystemExit(f'error: {last} names {checkpoint}, which does not exist')
    return configs[0], checkpoint


def main(argv=None):
    args = parse_args(argv)
    runs = {demo: trained_run(demo, getattr(args, demo)) for demo in args.demos}
    report, rows = {}, [('demo', 'run', 'metric', 'change', 'test keep rate', 'change',
                         'decisions flipped vs fp32', 'samples with a flip')]
    for demo, (config, checkpoint) in runs.items():
        _, _, metric, scale = DEMOS[demo]
        cfg = Config.fromfile(config)
        init_default_scope_of(cfg)
        results = []
        for label, precision, runtime in RUNS:
            print(f'[{demo}] testing {checkpoint}: {label}', flush=True)
            work_dir = osp.abspath(osp.join(args.out_dir, demo, label.replace(' ', '_')))
            try:
                results.append(evaluate_precision(cfg, checkpoint, precision, work_dir,
                                                  runtime, label))
            except ValueError as error:
                raise SystemExit(f'error: {demo}: {error}')
        table = metric_table(results, metric, scale)
        report[demo] = dict(config=config, checkpoint=checkpoint, metric=metric, rows=table)
        for row in table:
            rows.append((demo, row['precision'], f"{metric} {row['metric']:.2f}",
                         f"{row['metric_change']:+.2f}", f"{row['keep_rate']:.4f}",
                         f"{row['keep_rate_change']:+.4f}",
                         f"{100 * row['flipped_decisions']:.3f} %",
                         f"{100 * row['samples_with_a_flip']:.1f} %"))
    print('\n' + format_rows(rows))
    print(json_line(report))


if __name__ == '__main__':
    sys.exit(main())
