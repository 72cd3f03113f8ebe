"""Argument checks of the command-line tools: bad values fail at parse time,
before any config, checkpoint or data is read."""
import argparse
import os.path as osp
from contextlib import contextmanager
from typing import Callable, Optional, Sequence

# What mmengine's Config.fromfile reads.
CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be >= {minimum}, got {value}')
        return value

    parse.__name__ = f'integer >= {minimum}'
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None


def keep_rate(text: str) -> float:
    """A fraction of tokens in (0, 1]."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f'must lie in (0, 1], got {value}')
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
    return value


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    """What every speed tool takes: the model, the inputs, the timing protocol."""
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='full or adapter-only checkpoint (tensors only)')
    parser.add_argument('--batch-size', type=int_at_least(1), default=32)
    parser.add_argument('--num-iters', type=int_at_least(1), default=10,
                        help='timed forwards per mode')
    parser.add_argument('--warmup', type=int_at_least(0), default=2,
                        help='untimed forwards per mode first')
    parser.add_argument('--calibrate-rate', type=keep_rate, metavar='R',
                        help='benchmark aid: make the dispatchers keep this fraction of tokens')
    parser.add_argument('--shape', type=int_at_least(1), nargs='+', metavar='SIZE',
                        help='random inputs of this size: H W (images), T H W (clips)')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='torch threads (default: torch\'s choice)')
    parser.add_argument('--cfg-options', nargs='+', action=config_options_action(),
                        help='override settings in the config, key=value')


@contextmanager
def argument_errors(parser: argparse.ArgumentParser):
    """Checks of parsed arguments end the tool as argparse's own do: usage, the
    message, exit status 2."""
    try:
        yield
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))


def check_config_file(path: str) -> None:
    """``path`` is a config file: a missing file, a folder, or another kind of file
    (a checkpoint given in its place) is refused with what a config is."""
    if osp.isdir(path):
        raise ValueError(f'config {path} is a folder, not a config file')
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    if not path.endswith(CONFIG_SUFFIXES):
        raise ValueError(f'{path} is not a config file: a config ends in '
                         f'{", ".join(CONFIG_SUFFIXES)}')


def check_config_and_checkpoint(config: str, checkpoint: Optional[str]) -> None:
    """The ``CONFIG CHECKPOINT`` arguments of a tool: both exist, in this order.

    Given the other way round (mmengine would fail in its config parser with
    ``Only py/yml/yaml/json type are supported now!``), the error says which
    argument is which.
    """
    if (checkpoint and checkpoint.endswith(CONFIG_SUFFIXES)
            and not config.endswith(CONFIG_SUFFIXES)):
        raise ValueError(f'the config and the checkpoint are swapped: give the config first, '
                         f'then the checkpoint (got {config} as the config and {checkpoint} '
                         'as the checkpoint)')
    check_config_file(config)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')


def check_out_path(path: str, force: bool, suffixes: Optional[Sequence[str]] = None) -> None:
    """An --out file may be written: it ends in one of ``suffixes`` (if given), its
    folder exists, and it does not (or --force)."""
    if suffixes and not path.endswith(tuple(suffixes)):
        raise ValueError(f'--out {path} must end in {", ".join(suffixes)} (got '
                         f'{osp.splitext(path)[1] or "no extension"!r})')
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise FileNotFoundError(f'the folder of --out does not exist: {folder}')
    if osp.exists(path) and not force:
        raise ValueError(f'{path} exists; not overwriting it (give --force to replace it)')


def plot_suffixes() -> Sequence[str]:
    """The file extensions matplotlib's ``savefig`` writes."""
    from matplotlib.backend_bases import FigureCanvasBase
    return tuple(f'.{ext}' for ext in sorted(FigureCanvasBase.get_supported_filetypes()))


def config_options_action() -> type:
    """``--cfg-options``: mmengine's ``DictAction``, but a value it cannot read is a usage
    error that says how to write it (mmengine itself recurses until ``RecursionError`` on a
    ``dict(...)`` inside a list, and fails to unpack an item without ``=``)."""
    from mmengine.config import DictAction

    class ConfigOptions(DictAction):

        def __call__(self, parser, namespace, values, option_string=None):
            for item in values or []:
                if '=' not in item:
                    parser.error(f'{option_string}: {item!r} is not KEY=VALUE')
                try:
                    super().__call__(parser, namespace, [item], option_string)
                except RecursionError:
                    parser.error(f'{option_string}: cannot read {item!r}. {CFG_OPTIONS_HELP} '
                                 f'Here: {_field_by_field(item)}')

    return ConfigOptions


CFG_OPTIONS_HELP = (
    'A value on the command line is a number, a string, True/False/None, or a list or tuple '
    'of them ([1,2] or (1,2)); a dict inside (dict(...) or {...}) is not understood. Set '
    'one field at a time, the items of a list by their index (custom_hooks.0.tau=1.0), or '
    'write the value in a config file that inherits this one (_base_ = ...).')


_QUOTES = '\'"'


def _field_by_field(item: str) -> str:
    """``key=[dict(a=1), dict(b=2)]`` -> ``key.0.a=1 key.1.b=2``, the form ``DictAction`` reads."""
    import re
    key, value = item.split('=', 1)
    in_list = value.lstrip().startswith(('[', '('))
    fields = []
    for index, body in enumerate(re.findall(r'dict\(([^()]*)\)', value)):
        prefix = f'{key}.{index}' if in_list else key
        fields += [f'{prefix}.{name}={text.strip().strip(_QUOTES)}'
                   for name, text in re.findall(r'(\w+)\s*=\s*([^,]+)', body)]
    return ' '.join(fields) if fields else f'{key}.FIELD=VALUE'
