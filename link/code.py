"""Block codes over which the digital pipe runs: 5G NR LDPC or no code."""

from __future__ import annotations

import math

import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

#: 5G NR LDPC limits (38.212): largest info block (base graph 1)
LDPC_MAX_K = 8448


#: lowest code rate 5G NR LDPC supports (base graph 2)
LDPC_MIN_RATE = 0.2
#: largest info block of base graph 2, which 38.212 uses for every rate <= 1/4
LDPC_MAX_K_BG2 = 3840


def max_block_for_rate(rate: float) -> int:
    """Largest code block (info bits) 5G LDPC supports at ``rate``."""
    return LDPC_MAX_K_BG2 if rate <= 0.25 else LDPC_MAX_K


def ldpc_codeword_length(k: int, rate: float, m: int) -> int:
    """Rate-matched length ``n`` for ``k`` info bits: ``ceil(k / rate)``, rounded up to
    a multiple of the bits per symbol ``m`` so codewords fill whole symbols (rounded
    down instead where rounding up would fall below the lowest rate, 1/5)."""
    n = int(math.ceil(math.ceil(k / rate) / m) * m)
    if n > k / LDPC_MIN_RATE:
        n = int(k / LDPC_MIN_RATE) // m * m
    return n


class LDPCCode:
    """5G NR LDPC (Sionna) with rate matching and the 38.212 bit interleaver.

    :param k: Information bits per codeword (12 .. 8448).
    :param rate: Target code rate in (0, 1); the realised rate is ``k / n``.
    :param m: Bits per symbol, for the rate-matching interleaver.
    :param iterations: Belief-propagation iterations.
    :param cn_update: Sionna check-node rule: ``"boxplus-phi"`` (exact BP),
        ``"boxplus"``, ``"minsum"`` or ``"offset-minsum"`` (cheaper, ~0.2-0.5 dB worse).
    """

    CN_UPDATES = ("boxplus-phi", "boxplus", "minsum", "offset-minsum")

    def __init__(self, k: int, rate: float, m: int, iterations: int = 20,
                 cn_update: str = "boxplus-phi", precision: str = "single", device: str = "cpu"):
        if not LDPC_MIN_RATE <= rate < 1:
            raise ValueError(f"rate must be in [{LDPC_MIN_RATE}, 1), got {rate}")
        if not 1 <= k <= LDPC_MAX_K:
            raise ValueError(f"k must be in [1, {LDPC_MAX_K}], got {k}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if cn_update not in self.CN_UPDATES:
            raise ValueError(f"cn_update must be one of {', '.join(self.CN_UPDATES)}, got {cn_update!r}")
        self.k = k
        self.n = ldpc_codeword_length(k, rate, m)
        self._enc = LDPC5GEncoder(k, self.n, num_bits_per_symbol=m,
                                  precision=precision, device=device, check_input=False)
        self._dec = LDPC5GDecoder(self._enc, cn_update=cn_update, num_iter=iterations, hard_out=True,
                                  return_infobits=True, precision=precision, device=device)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """[..., k] float bits -> [..., n] float bits."""
        return self._enc(u)

    def decode(self, llr: torch.Tensor) -> torch.Tensor:
        """[..., n] LLRs (log p1/p0) -> [..., k] hard bits (float)."""
        return self._dec(llr)


class NoCode:
    """Uncoded transmission: ``n = k`` (k a multiple of ``m``), hard decisions."""

    def __init__(self, k: int, m: int):
        if k < 1 or k % m:
            raise ValueError(f"k must be a positive multiple of {m} bits, got {k}")
        self.k = self.n = k

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        return u

    def decode(self, llr: torch.Tensor) -> torch.Tensor:
        return (llr > 0).to(llr.dtype)
