"""Token dispatcher: a linear gate that decides which tokens enter a block."""
import torch
from torch import nn


class TokenDispatcher(nn.Module):
    """Linear C -> 1 gate over image tokens; prefix (class) tokens are always kept.

    Training: Gumbel-sigmoid ``sigmoid((logit + g1 - g2) / tau)`` thresholded at
    ``threshold`` with a straight-through gradient (the forward pass sees the
    hard 0/1 mask, the backward pass the soft one). Eval: ``sigmoid(logit -
    threshold_offset)`` thresholded, no noise, so the same input always gives
    the same mask.

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

    def forward(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        logits = self.gate(x[:, num_prefix:]).squeeze(-1)
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
            image_mask = (torch.sigmoid(logits - self.threshold_offset) >
                          self.threshold).to(logits.dtype)
        prefix = image_mask.new_ones(image_mask.shape[0], num_prefix)
        return torch.cat([prefix, image_mask], dim=1)

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
