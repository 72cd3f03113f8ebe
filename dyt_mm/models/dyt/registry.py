"""Building adapters and dispatchers from config dicts in mmengine's root ``MODELS``.

The root registry is the parent of mmpretrain's, mmseg's and mmaction's, so a
module registered here (or in any of them) is found from every toolbox scope,
and the core itself stays toolbox-free. Every part is built with the block's
``embed_dims`` as a default argument.
"""
import numbers
from typing import Mapping

from mmengine.registry import MODELS
from torch import nn


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f'unknown {name} {value!r}; allowed: {", ".join(map(str, allowed))}')


def check_real(name: str, value, above=None, at_least=None) -> None:
    """A number from a config: any real (numpy's too), never a bool or a string,
    which hand-written configs and ``--cfg-options`` both produce (``'0.5' < 1``
    would only fail later, as a ``TypeError`` that names nothing); optionally
    ``> above`` or ``>= at_least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = '; write it without quotes' if isinstance(value, str) else ''
        raise TypeError(f'{name} must be a number, got {value!r} (a {type(value).__name__})'
                        f'{hint}')
    if above is not None and not value > above:
        raise ValueError(f'{name} must be > {above}, got {value!r}')
    if at_least is not None and not value >= at_least:
        raise ValueError(f'{name} must be >= {at_least}, got {value!r}')


def build_part(kind: str, cfg: Mapping, default_type: str, embed_dims: int,
               ours=()) -> nn.Module:
    """``MODELS.build(cfg)`` with ``type`` defaulting to ``default_type``.

    ``kind`` and ``ours`` (the types dyt-mm registers) only serve the error
    message for an unknown type.
    """
    if not isinstance(cfg, Mapping):
        raise ValueError(f'{kind} must be a dict with a `type` (or None), got {cfg!r}')
    cfg = dict(cfg)
    cfg.setdefault('type', default_type)
    if isinstance(cfg['type'], str):
        with MODELS.switch_scope_and_registry(None) as registry:
            if registry.get(cfg['type']) is None:
                raise ValueError(
                    f'unknown {kind} type {cfg["type"]!r}; dyt-mm registers '
                    f'{", ".join(ours)}, and your own class works once registered with '
                    '@mmengine.registry.MODELS.register_module()')
    return MODELS.build(cfg, default_args=dict(embed_dims=embed_dims))
