"""Dispatchers: decide which tokens (or whole samples) enter a dispatched block.

All are registered in mmengine's root ``MODELS`` and built from
``dispatch=dict(type=...)`` (default ``TokenDispatcher``). A dispatcher maps
``(x, num_prefix)`` to a ``(B, N)`` 0/1 mask over *all* tokens, and declares

* ``keeps_prefix``: whether prefix tokens (class token, prompts) are always
  kept, which FLOP counting needs to know;
* ``flops(num_image_tokens)``: its own cost per image (one multiply-add = 1).

and ranks tokens for the static-shape ``capacity`` mode with ``ranked``.

In eval every dispatcher is deterministic, so ``sparse`` equals ``masked``.
"""
import math
from typing import Tuple

import torch
from torch import nn

from mmengine.registry import MODELS

from .keyed_random import content_keys, keyed_uniforms
from .registry import build_part, check_choice

LEVELS = ('token', 'sample')
DEFAULT_DISPATCH = dict(type='TokenDispatcher')


def threshold_logit(threshold: float) -> float:
    """The logit whose sigmoid is ``threshold``: an eval decision ``sigmoid(logit - offset)
    > threshold`` is ``logit > offset + threshold_logit(threshold)``."""
    return math.log(threshold / (1.0 - threshold))


def expand_decision(image_mask: torch.Tensor, level: str, num_tokens: int,
                    num_prefix: int) -> torch.Tensor:
    """``(B, N)`` mask from per-image-token (prefix kept) or per-sample decisions."""
    if level == 'sample':
        return image_mask.expand(-1, num_tokens)  # (B, 1): the whole sample, prefix included
    prefix = image_mask.new_ones(image_mask.shape[0], num_prefix)
    return torch.cat([prefix, image_mask], dim=1)


class Dispatcher(nn.Module):
    """What every dispatcher shares: its ``level`` (token or sample)."""
    level = 'token'

    @property
    def keeps_prefix(self) -> bool:
        """Token-level dispatch always keeps the prefix; sample-level skips it too."""
        return self.level == 'token'

    def ranked(self, x: torch.Tensor, num_prefix: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The ``(B, N)`` mask and a ``(B, N)`` score (higher: more wanted) that ranks the
        kept tokens when a site processes only its top K (the ``capacity`` mode).

        Without a gate the mask is the only ranking; gated dispatchers return
        their logits, computed once for both.
        """
        mask = self(x, num_prefix)
        return mask, mask


@MODELS.register_module()
class TokenDispatcher(Dispatcher):
    """Linear C -> 1 gate over image tokens; prefix (class) tokens are always kept.

    Training: Gumbel-sigmoid ``sigmoid((logit + g1 - g2) / tau)`` thresholded at
    ``threshold`` with a straight-through gradient (the forward pass sees the
    hard 0/1 mask, the backward pass the soft one). Eval: ``sigmoid(logit -
    threshold_offset) > threshold`` (compared in logit space), no noise, so the
    same input always gives the same mask.

    ``threshold_offset`` (a buffer, saved in checkpoints) shifts only that eval
    decision: 0 (the default) is the paper's rule; :func:`dyt_mm.calibrate_budget`
    sets it so that a trained model keeps a chosen share of tokens at test.

    Note that ``g1 - g2`` is Logistic(0, 1) noise, so tau does not change which
    masks are sampled at threshold 0.5; it only scales the surrogate gradient.

    Returns a ``(B, N)`` mask over *all* tokens (prefix entries are 1).
    """
    def __init__(self, embed_dims: int, tau: float = 5.0, threshold: float = 0.5):
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f'dispatch threshold must lie in (0, 1), got {threshold!r}')
        self.gate = nn.Linear(embed_dims, 1)
        self.tau = tau
        self.threshold = threshold
        nn.init.trunc_normal_(self.gate.weight, std=0.02)
        nn.init.zeros_(self.gate.bias)
        self.register_buffer('threshold_offset', torch.zeros(()))

    @property
    def tau(self) -> float:
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f'Gumbel-sigmoid temperature tau must be > 0, got {value!r}')
        self._tau = float(value)

    def image_logits(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        """One gate logit per image token ``(B, N_image)``."""
        return self.gate(x[:, num_prefix:]).squeeze(-1)

    def flops(self, num_image_tokens: int) -> int:
        return num_image_tokens * self.gate.in_features

    def forward(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        return self.decide(self.image_logits(x, num_prefix), x.shape[1], num_prefix)

    def ranked(self, x: torch.Tensor, num_prefix: int) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.image_logits(x, num_prefix)
        N = x.shape[1]
        return (self.decide(logits, N, num_prefix),
                expand_decision(logits, self.level, N, num_prefix))

    def decide(self, logits: torch.Tensor, num_tokens: int, num_prefix: int) -> torch.Tensor:
        """The ``(B, N)`` mask of ``num_tokens`` tokens from the gate's ``logits``."""
        if self.training:
            # Noise and soft mask in float32 even under fp16 autocast: half-precision
            # torch.rand returns exact zeros (p ~ 2^-12) that the clamp cannot lift
            # (1e-10 rounds to 0 in fp16), and two in one token give inf - inf = NaN.
            uniform = torch.rand(2, *logits.shape, dtype=torch.float32, device=logits.device)
            gumbel = -torch.log(-torch.log(uniform.clamp_(1e-10, 1.0 - 1e-7)))
            soft = torch.sigmoid((logits.float() + gumbel[0] - gumbel[1]) / self.tau)
            hard = (soft > self.threshold).to(soft.dtype)
            image_mask = (hard - soft.detach() + soft).to(logits.dtype)
        else:
            # sigmoid(logit - offset) > threshold, compared in logit space: near 0.5 the
            # sigmoid rounds logits up to ~2.4e-7 apart to the same float, so a token that
            # calibration put just past the cut could be decided either way (and differently
            # by an exported graph); in logit space it keeps its full margin.
            cut = self.threshold_offset + threshold_logit(self.threshold)
            image_mask = (logits > cut).to(logits.dtype)
        return expand_decision(image_mask, self.level, num_tokens, num_prefix)

    def extra_repr(self) -> str:
        offset = self.threshold_offset.item()
        return f'tau={self.tau}, threshold={self.threshold}' + (
            f', threshold_offset={offset:.4g}' if offset else '')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        # Checkpoints from before calibration existed carry no offset; the model keeps its own.
        key = prefix + 'threshold_offset'
        if key in missing_keys:
            missing_keys.remove(key)


@MODELS.register_module()
class SampleDispatcher(TokenDispatcher):
    """One learned decision per sample (paper Table 7, sample level).

    The gate reads the average of the sample's image tokens; the decision
    (Gumbel-sigmoid in training, as for tokens) applies to every token of the
    sample, prefix included, so ``sparse`` inference skips the sample's whole
    dispatched block.
    """
    level = 'sample'

    def image_logits(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        """One logit per sample ``(B, 1)`` from its pooled image tokens."""
        return self.gate(x[:, num_prefix:].mean(dim=1))

    def flops(self, num_image_tokens: int) -> int:
        return self.gate.in_features  # one gate on the pooled vector; the mean is free


@MODELS.register_module()
class RandomDispatcher(Dispatcher):
    """Keep each image token (``level='token'``) or each sample (``'sample'``) with
    probability ``rate``; nothing is learned (paper Table 7, random strategy).

    Training draws a fresh mask every forward. Eval draws a sample's mask from
    its own content: a key read off the sample's tokens at this layer, hashed
    with the ``seed`` buffer (random at construction, saved with the model)
    into one uniform number per token (:mod:`.keyed_random`). So a sample gets
    the same mask at any batch size and place in the batch, in ``masked`` and
    ``sparse`` alike, two different samples get different masks, and a reloaded
    model makes the same decisions; over many samples a share ``rate`` of the
    tokens is kept. The key costs one multiply-add per image token and channel
    in eval, as much as a learned gate.
    """

    def __init__(self, embed_dims: int, rate: float = 0.5, level: str = 'token'):
        super().__init__()
        if not 0.0 < rate <= 1.0:
            raise ValueError(f'random dispatch rate must lie in (0, 1], got {rate!r}')
        check_choice('dispatch level', level, LEVELS)
        self.embed_dims = embed_dims
        self.rate = rate
        self.level = level
        self.register_buffer('seed', torch.randint(0, 2**31 - 1, ()))

    def flops(self, num_image_tokens: int) -> int:
        return num_image_tokens * self.embed_dims  # the content key's projection

    def forward(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        B, N = x.shape[:2]
        count = N - num_prefix if self.level == 'token' else 1
        if self.training:
            uniform = torch.rand(B, count, device=x.device)
        else:
            keys = content_keys(x[:, num_prefix:], self.seed)
            uniform = keyed_uniforms(keys, self.seed, count)
        image_mask = (uniform < self.rate).to(x.dtype)
        return expand_decision(image_mask, self.level, N, num_prefix)

    def extra_repr(self) -> str:
        return f'rate={self.rate}, level={self.level!r}'


def build_dispatcher(cfg: dict, embed_dims: int) -> nn.Module:
    """A dispatcher from ``dict(type=..., **kwargs)``; no ``type`` means ``TokenDispatcher``."""
    return build_part('dispatch', cfg, 'TokenDispatcher', embed_dims,
                      ('TokenDispatcher', 'SampleDispatcher', 'RandomDispatcher'))
