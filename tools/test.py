"""Test a DyT model: the config's test set, sparse inference, DyT figures in the log.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.pkl] [--force]
                                           [--precision fp32|bf16|int8]
                                           [--runtime eager|onnxruntime]
                                           [--cfg-options k=v ...] [--launcher ...]

CHECKPOINT may be a full training checkpoint or an adapter-only one (saved
with ``DyTHook(save_trainable_only=True)``); for the latter the frozen base is
loaded from the backbone's ``init_cfg``. Only tensors are read from it, and
they must fit the model exactly. Testing writes its logs and config into a new
timestamped folder of the work dir and changes none of a training run's files;
a results file (--out, or a DumpResults in the config) is never replaced
without --force. ``--precision bf16`` tests the DyT network in bfloat16, ``int8`` with the
linear layers of its frozen base quantised as ONNX Runtime's dynamic quantisation does
(``tools/deploy/export.py --precision int8`` writes that file); ``--runtime onnxruntime``
exports the DyT network to that int8 file and tests the file itself in ONNX Runtime
(dyt_mm.deploy.precision_hook.PrecisionHook).
"""
import argparse
import os
import os.path as osp
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before any toolbox import)
from dyt_mm.apis import init_default_scope_of, prepare_distributed
from dyt_mm.deploy.precision import PRECISIONS
from dyt_mm.deploy.precision_hook import RUNTIMES  # (and registers PrecisionHook)
from dyt_mm.utils.checkpoint import CheckpointError
from dyt_mm.utils.cli import check_config_and_checkpoint, config_options_action
from mmengine.config import Config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a DyT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing results file')
    parser.add_argument('--cfg-options', nargs='+', action=config_options_action(),
                        help='override settings in the config, key=value')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='test the DyT network in bfloat16, or its frozen base in int8')
    parser.add_argument('--runtime', choices=RUNTIMES, default='eager',
                        help='onnxruntime: test the int8 ONNX file itself (--precision int8)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.runtime == 'onnxruntime' and args.precision != 'int8':
        parser.error(f'--runtime onnxruntime tests the int8 ONNX file: it needs --precision int8 '
                     f'(got --precision {args.precision})')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        check_config_and_checkpoint(args.config, args.checkpoint)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'error: {error}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.launcher = args.launcher
    # A test run has no train loop (so the Runner leaves the training run's config alone).
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, (list, tuple)) else [
        cfg.test_evaluator]
    cfg.test_evaluator = list(evaluators)
    if args.out:
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    for evaluator in cfg.test_evaluator:
        out = evaluator.get('out_file_path') if evaluator.get('type') == 'DumpResults' else None
        if out and osp.exists(out) and not args.force:
            raise SystemExit(f'error: results file {out} exists; not replacing it without '
                             '--force (or give another --out)')
    if args.precision != 'fp32':
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='PrecisionHook', precision=args.precision,
                                 runtime=args.runtime)]
    init_default_scope_of(cfg)
    prepare_distributed(cfg)

    from mmengine.registry import RUNNERS
    cfg.setdefault('runner_type', 'DyTRunner')
    runner = RUNNERS.build(cfg)
    try:
        return runner.test()
    except CheckpointError as error:
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
    sys.exit(0)
