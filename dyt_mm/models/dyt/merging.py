"""Token merging (ToMe, Bolya et al., ICLR 2023) between attention and MLP of a block.

After attention, the image tokens are split alternately into two sets A
(even positions) and B (odd positions). Each A token is matched to its most
similar B token (cosine similarity of the attention keys, averaged over
heads), and the ``r`` A tokens with the best matches are merged into their B
partners (a bipartite soft matching: no token is merged twice per block,
and no iteration is needed). A merged token is the size-weighted average of
what it absorbed, and remembers its *size*, the number of patches it
stands for, so that attention can weigh it as that many tokens
(proportional attention: ``+ log(size)`` on its attention logits).

Prefix tokens (class, distillation, register tokens, VPT prompts) are never
merged. Each block removes ``min(r, T // 2)`` of its ``T`` image tokens, so
the token count shrinks per block along a fixed schedule
(:func:`merge_schedule`); which tokens merge depends on the input.

For pictures, :class:`MergeState` also tracks ``sources``: for every
original patch, the index of the image token that now holds it.
"""
from functools import partial
from typing import List, NamedTuple, Tuple

import torch
import torch.nn.functional as F


class MergeState(NamedTuple):
    """What merging carries from block to block.

    ``r``: image tokens merged per block (0: none); ``sizes``: ``(B, T)``
    patches each image token stands for (float, they weigh averages);
    ``sources``: ``(B, P)`` for each of the ``P`` original patches, the index
    of the image token that holds it.
    """
    r: int
    sizes: torch.Tensor
    sources: torch.Tensor

    def attention_bias(self, num_prefix: int) -> torch.Tensor:
        """``(B, N)`` additive logit per key: ``log(size)``, 0 for the prefix tokens."""
        prefix = self.sizes.new_zeros(self.sizes.shape[0], num_prefix)
        return torch.cat([prefix, self.sizes.log()], dim=1)


class Matching(NamedTuple):
    """Indices into the sets A and B of one block's bipartite matching, ``(B, ...)`` each."""
    merged: torch.Tensor  # (B, r): the A tokens that merge
    into: torch.Tensor  # (B, r): the B token each of them merges into
    unmerged: torch.Tensor  # (B, |A| - r): the A tokens that stay, in their original order


def parse_merge(merge) -> int:
    """``merge=dict(r=R)`` (or None) -> R, the image tokens merged per block."""
    if merge is None:
        return 0
    if not isinstance(merge, dict) or set(merge) != {'r'}:
        raise ValueError(f'merge must be None or dict(r=R) (R image tokens merged per block, '
                         f'ToMe), got {merge!r}')
    return check_merge_r(merge['r'])


def check_merge_r(r) -> int:
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ValueError(f'merge r (tokens merged per block) must be an integer >= 0, got {r!r}')
    return r


def merged_per_block(num_image_tokens: int, r: int) -> int:
    """Tokens one block merges: at most half of them (every B token can take one A token)."""
    return min(r, num_image_tokens // 2)


def merge_schedule(num_image_tokens: int, r: int, depth: int) -> List[Tuple[int, int]]:
    """``(attention, MLP)`` image-token counts of each block when ``r`` merge per block."""
    schedule = []
    for _ in range(depth):
        after = num_image_tokens - merged_per_block(num_image_tokens, r)
        schedule.append((num_image_tokens, after))
        num_image_tokens = after
    return schedule


def initial_state(x: torch.Tensor, num_prefix: int, r: int) -> MergeState:
    """Every image token of ``x`` ``(B, N, C)`` is one patch, its own source."""
    B, N = x.shape[:2]
    sizes = x.new_ones(B, N - num_prefix)
    sources = torch.arange(N - num_prefix, device=x.device).expand(B, -1)
    return MergeState(r, sizes, sources)


def bipartite_matching(keys: torch.Tensor, r: int) -> Matching:
    """Match the A tokens (even positions) of ``keys`` ``(B, T, D)`` to the B tokens (odd).

    The ``r`` A tokens whose best B match is most similar (cosine) merge.
    """
    keys = F.normalize(keys, dim=-1)
    scores = keys[:, ::2] @ keys[:, 1::2].transpose(1, 2)  # (B, |A|, |B|)
    best, partner = scores.max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    merged = order[:, :r]
    return Matching(merged, partner.gather(1, merged), order[:, r:].sort(dim=-1).values)


def _new_positions(match: Matching, num_tokens: int) -> torch.Tensor:
    """``(B, T)``: where each image token goes when merging; a merged A token goes where
    its B partner goes. The unmerged A tokens come first (in order), then the B tokens."""
    B, kept_a = match.unmerged.shape
    arange = partial(torch.arange, device=match.unmerged.device)
    a_positions = match.unmerged.new_empty(B, (num_tokens + 1) // 2)
    a_positions.scatter_(1, match.unmerged, arange(kept_a).expand(B, -1))
    a_positions.scatter_(1, match.merged, kept_a + match.into)
    b_positions = (kept_a + arange(num_tokens // 2)).expand(B, -1)
    positions = torch.stack([a_positions[:, :num_tokens // 2], b_positions], dim=2).flatten(1)
    return torch.cat([positions, a_positions[:, num_tokens // 2:]], dim=1)  # odd T: last A


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]`` of ``(B, T, C)`` x for a ``(B, K)`` index."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def merge_tokens(x: torch.Tensor, keys: torch.Tensor, num_prefix: int,
                 state: MergeState) -> Tuple[torch.Tensor, MergeState]:
    """Merge ``state.r`` image tokens of ``x`` ``(B, N, C)`` by their ``keys`` ``(B, N, D)``.

    Returns the ``(B, N - r', C)`` tokens (prefix first, unchanged) and the
    updated sizes and sources; ``r' = min(r, T // 2)``; ``r' = 0`` returns ``x`` itself.
    """
    B, N, C = x.shape
    T = N - num_prefix
    r = merged_per_block(T, state.r)
    if r == 0:
        return x, state
    match = bipartite_matching(keys[:, num_prefix:], r)
    a, b = x[:, num_prefix::2], x[:, num_prefix + 1::2]
    a_sizes, b_sizes = state.sizes[:, ::2], state.sizes[:, 1::2]
    moved_sizes = a_sizes.gather(1, match.merged)
    b_sizes = b_sizes.scatter_add(1, match.into, moved_sizes)
    out = torch.cat([x[:, :num_prefix], _rows(a, match.unmerged), b], dim=1)
    # Only the B tokens that take A tokens change: the size-weighted mean of a B token and
    # what merges into it is the B token plus, per merged A token, its share of the new size
    # times its difference from the B token. These r rows per sample are updated in place
    # (index_add_ on CPU costs a pass over the whole tensor, index_copy_ only the rows); A
    # tokens that merge into the same B token sum their updates first, so that the rows
    # copied for one B token are equal.
    kept_a = match.unmerged.shape[1]
    rows = (num_prefix + kept_a + match.into
            + (N - r) * torch.arange(B, device=x.device)[:, None]).flatten()
    flat = out.view(-1, C)
    into_b = flat.index_select(0, rows).view(B, r, C)
    share = (moved_sizes / b_sizes.gather(1, match.into)).unsqueeze(-1).to(x.dtype)
    same_b = (match.into.unsqueeze(2) == match.into.unsqueeze(1)).to(x.dtype)  # (B, r, r)
    update = same_b @ (share * (_rows(a, match.merged) - into_b))
    flat.index_copy_(0, rows, (into_b + update).view(-1, C))
    sizes = torch.cat([a_sizes.gather(1, match.unmerged), b_sizes], dim=1)
    return out, MergeState(state.r, sizes, _new_positions(match, T).gather(1, state.sources))


def merging_flops(num_image_tokens: int, key_dim: int, dim: int, r: int) -> int:
    """Multiply-adds of one block's merge: the A x B key similarities, and summing the
    updates of the A tokens that merge into the same B token (r x r x dim); 0 without merging."""
    merged = merged_per_block(num_image_tokens, r)
    if merged == 0:
        return 0
    return ((num_image_tokens + 1) // 2) * (num_image_tokens // 2) * key_dim + merged**2 * dim
