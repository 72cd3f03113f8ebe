"""Argument types of the command-line tools: bad values fail at parse time,
before any config, checkpoint or data is read."""
import argparse
from typing import Callable


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


def keep_rate(text: str) -> float:
    """A fraction of tokens in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f'must lie in (0, 1], got {value}')
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
    return value
