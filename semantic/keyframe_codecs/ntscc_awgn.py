"""Differentiable AWGN on NTSCC's masked channel values (training only).

Each image's selected values are paired into complex symbols and normalised
to unit average power (as :class:`~lgvsc.link.analog.AnalogPipe` does), the
complex noise variance is ``no = 10 ** (-snr_db / 10)`` (``no / 2`` per real
value), and the result is scaled back, so ``s_hat = s + sqrt(P * no / 2) * n``
with ``P`` the image's mean complex-symbol power and n ~ N(0, 1) from the
passed generator. The gradient flows through ``s`` and ``P``.
"""

from __future__ import annotations

import torch


def awgn_masked(s: torch.Tensor, mask: torch.Tensor, snr_db: float | None,
                generator: torch.Generator | None) -> torch.Tensor:
    """:input s: [B, ...] real values (zero where ``mask`` is False);
    :input mask: bool, shape of s; :input snr_db: Es/N0 in dB (None: noiseless).
    :output: s_hat, shape of s, zero where ``mask`` is False."""
    if snr_db is None:
        return s
    if generator is None:
        raise ValueError("generator is required for a noisy channel")
    b = s.shape[0]
    m = mask.to(s.dtype)
    count = m.reshape(b, -1).sum(1).clamp_min(1)
    power = 2 * (s * m).square().reshape(b, -1).sum(1) / count  # complex symbol power
    no = 10.0 ** (-float(snr_db) / 10.0)
    std = (power.clamp_min(1e-12) * no / 2).sqrt().reshape(b, *([1] * (s.ndim - 1)))
    n = torch.randn(s.shape, generator=generator, device=generator.device, dtype=s.dtype)
    return (s + std * n.to(s.device)) * m
