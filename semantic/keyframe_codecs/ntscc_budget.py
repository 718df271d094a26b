"""Meeting a channel-use budget with NTSCC's eta.

A token with estimated entropy ``b`` bits gets ``rate_choices[i]`` real
values, ``i`` the first choice >= ``eta * b`` (clamped). The image's analog
value count ``n(eta)`` is non-decreasing in eta, so the largest eta whose
count fits is found by bisection. ``fits(n)`` is the caller's test (the
analog pipe's uses for n values, its power-scale side info included, against
what the budget leaves after the digital side info).
"""

from __future__ import annotations

from typing import Callable

import torch

from .ntscc_jscc import rate_indexes

BISECTION_STEPS = 48


def values_for(token_bits: torch.Tensor, eta: float, rate_choices: torch.Tensor) -> int:
    """Real channel values for tokens of ``token_bits`` [L] at ``eta``."""
    return int(rate_choices[rate_indexes(token_bits[None], eta, rate_choices)].sum())


def choose_eta(token_bits: torch.Tensor, rate_choices: torch.Tensor,
               fits: Callable[[int], bool]) -> float:
    """Largest eta (to bisection precision) with ``fits(values_for(eta))``.

    :input token_bits: [L] float, bits per token. :input rate_choices: [R] long.
    :raises ValueError: if even eta = 0 (every token at its shortest length) does not fit.
    """
    if not fits(values_for(token_bits, 0.0, rate_choices)):
        raise ValueError("budget_uses too small for NTSCC's shortest token lengths")
    positive = token_bits[token_bits > 0]
    if positive.numel() == 0:
        return 0.0
    hi = float(rate_choices[-1]) / float(positive.min()) * 2
    if fits(values_for(token_bits, hi, rate_choices)):
        return hi
    lo = 0.0
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        if fits(values_for(token_bits, mid, rate_choices)):
            lo = mid
        else:
            hi = mid
    return lo
