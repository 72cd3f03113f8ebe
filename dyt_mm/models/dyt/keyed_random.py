"""Reproducible pseudo-random numbers keyed by a sample's content, for eval-time random dispatch.

A sample's numbers must not depend on the batch it comes in (its size, its place
in it) or on the execution mode, yet differ from sample to sample. So they are
computed from the sample alone:

* :func:`content_keys` reads a 31-bit key off the sample's tokens: the tokens,
  centred on the sample's mean token, are projected onto a fixed +-1 vector,
  the projections summed in 31 groups (token index mod 31) and each group's
  sign taken as one bit. A key changes only if a group sum lies within rounding
  error of zero, so the small float differences between batch sizes or between
  ``masked`` and ``sparse`` execution (~1e-6) almost never reach it, where a hash
  of the float bits would change with every last bit.
* :func:`keyed_uniforms` turns (key, seed, index) into uniform numbers in [0, 1)
  with an integer mixing hash.

Everything is int64 / float32 tensor arithmetic on the tokens' device (``+``,
``*``, ``//``, ``%``, xor; no generator, no host sync), exact and so the same on
every device, traceable by ``torch.export`` and ONNX (opset 18). Values stay
below 2**31 and products below 2**62, so int64 never overflows.
"""
import torch

MODULUS = 2**31
KEY_BITS = 31
UNIFORM_BITS = 24  # float32 holds every multiple of 2**-24 in [0, 1) exactly
# odd multipliers below 2**31: multiplying by one is a bijection modulo 2**31
MULTIPLIERS = (0x2C1B3C6D, 0x297A2D39, 0x5851F42D)
SHIFTS = (16, 13, 15)
KEY_STRIDE, INDEX_STRIDE = 0x3C6EF35F, 0x1B873593


def mix(h: torch.Tensor) -> torch.Tensor:
    """Scramble int64 values in [0, 2**31) into [0, 2**31): three rounds of xor with the value
    shifted right, then a multiplication by an odd constant, and a last xor-shift."""
    for shift, multiplier in zip(SHIFTS, MULTIPLIERS):
        h = torch.bitwise_xor(h, h // 2**shift)
        h = (h * multiplier) % MODULUS
    return torch.bitwise_xor(h, h // 2**SHIFTS[0])


def content_keys(tokens: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """One int64 key in [0, 2**31) per sample of ``tokens`` (B, N, C), from its content.

    ``seed`` (an int64 scalar tensor) picks the +-1 projection, so two
    dispatchers read different bits off the same tokens.
    """
    B, N, C = tokens.shape
    channels = torch.arange(C, device=tokens.device)
    signs = 1.0 - 2.0 * (mix((channels + seed) % MODULUS) // (MODULUS // 2)).float()
    # in float32 even under autocast: half precision would bring more keys near a sign change
    with torch.autocast(device_type=tokens.device.type, enabled=False):
        projected = (tokens.float() @ signs[:, None]).squeeze(-1)  # (B, N): N x C mult-adds
    # centring the projections centres the tokens on the sample's mean token (it is linear)
    projected = projected - projected.mean(dim=1, keepdim=True)
    groups = min(KEY_BITS, N)
    padded = torch.nn.functional.pad(projected, (0, -N % groups))
    bits = (padded.view(B, -1, groups).sum(dim=1) > 0).long()  # (B, groups)
    return (bits * 2**torch.arange(groups, device=tokens.device)).sum(dim=1)


def keyed_uniforms(keys: torch.Tensor, seed: torch.Tensor, count: int) -> torch.Tensor:
    """``(B, count)`` float32 numbers in [0, 1): number ``i`` of sample ``b`` is a hash of
    ``(keys[b], seed, i)`` alone."""
    index = torch.arange(1, count + 1, device=keys.device)
    h = (keys[:, None] * KEY_STRIDE + index * INDEX_STRIDE + seed) % MODULUS
    return (mix(h) // 2**(31 - UNIFORM_BITS)).float() / 2**UNIFORM_BITS
