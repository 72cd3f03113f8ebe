"""mmaction head: one learnable query reads every token of every frame."""
from typing import Dict, Optional

import torch
from mmaction.models.heads import BaseHead
from mmaction.registry import MODELS
from torch import nn


@MODELS.register_module()
class TemporalQueryHead(BaseHead):
    """Cross-attention pooling over all frames, then a linear classifier.

    A learnable query token attends to the concatenated tokens of all ``T``
    frames (every frame's class token included) through one multi-head
    cross-attention layer with LayerNorm on the query, the keys and the
    values, as in the paper (after CoCa/CAE). Like the official code it has no
    residual and no MLP: the attention output goes straight to the classifier.

    The query attends to a set: permuting the frames does not change the
    scores, so the model sees *which* frames a clip holds, not their order.

    Args:
        num_classes, in_channels, loss_cls, average_clips, topk: see mmaction's
            :class:`BaseHead`. Multi-view testing averages the views' scores
            as ``average_clips`` says (``score``: logits, as the paper does).
        num_heads: attention heads of the cross-attention.
        dropout_ratio: dropout before the classifier.
        init_std: std of the classifier's trunc-normal initialisation.
    """

    def __init__(self, num_classes: int, in_channels: int, num_heads: int = 12,
                 dropout_ratio: float = 0.0, init_std: float = 0.01,
                 loss_cls: Dict = dict(type='CrossEntropyLoss'),
                 average_clips: Optional[str] = 'score', **kwargs):
        super().__init__(num_classes, in_channels, loss_cls, average_clips=average_clips,
                         **kwargs)
        if in_channels % num_heads:
            raise ValueError(f'in_channels {in_channels} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(1, 1, in_channels))
        self.norm_q = nn.LayerNorm(in_channels, eps=1e-6)
        self.norm_k = nn.LayerNorm(in_channels, eps=1e-6)
        self.norm_v = nn.LayerNorm(in_channels, eps=1e-6)
        self.q = nn.Linear(in_channels, in_channels)
        self.k = nn.Linear(in_channels, in_channels)
        self.v = nn.Linear(in_channels, in_channels)
        self.proj = nn.Linear(in_channels, in_channels)
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.trunc_normal_(self.query, std=0.02)
        for layer in (self.q, self.k, self.v, self.proj, self.fc_cls):
            nn.init.trunc_normal_(layer.weight, std=init_std if layer is self.fc_cls else 0.02)
            nn.init.zeros_(layer.bias)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, N, C)`` frame tokens -> ``(B, C)``, the query's attention output."""
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f'expected frame tokens of shape (B, T, N, {self.in_channels}), '
                             f'got {tuple(x.shape)}')
        B, C, heads = x.shape[0], self.in_channels, self.num_heads
        tokens = x.reshape(B, -1, C)

        def split_heads(t):
            return t.reshape(B, -1, heads, C // heads).transpose(1, 2)

        q = split_heads(self.q(self.norm_q(self.query)).expand(B, -1, -1))
        k = split_heads(self.k(self.norm_k(tokens)))
        v = split_heads(self.v(self.norm_v(tokens)))
        # Explicit matmuls (no scaled_dot_product_attention) so FLOP counters see them.
        attn = (q * (C // heads)**-0.5) @ k.transpose(-2, -1)
        pooled = attn.softmax(dim=-1) @ v  # (B, heads, 1, C / heads)
        return self.proj(pooled.transpose(1, 2).reshape(B, C))

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.fc_cls(self.dropout(self.pool(x)))

    def flops(self, num_tokens: int) -> int:
        """Multiply-adds for one clip of ``num_tokens`` tokens (fvcore's convention)."""
        C = self.in_channels
        norms = 5 * C + 2 * 5 * num_tokens * C
        projections = 2 * C * C + 2 * num_tokens * C * C  # q and proj; k and v
        attention = 2 * num_tokens * C  # q @ k^T and attn @ v
        return norms + projections + attention + C * self.num_classes
