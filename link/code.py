"""Block codes over which the digital pipe runs: 5G NR LDPC or no code."""

from __future__ import annotations

import math

import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

#: 5G NR LDPC limits (38.212): largest info block (base graph 1)
LDPC_MAX_K = 8448
#: smallest info block Sionna's 5G encoder accepts
LDPC_MIN_K = 12
#: lowest code rate 5G NR LDPC supports (base graph 2, no repetition)
LDPC_MIN_RATE = 0.2
#: highest code rate Sionna's 5G encoder accepts (38.212 5.4.2.1 allows ~948/1024)
LDPC_MAX_RATE = 0.95
#: largest info block of base graph 2, which 38.212 uses for every rate <= 1/4
LDPC_MAX_K_BG2 = 3840
#: base graph 2 is also chosen for K <= 3824 at rates <= 0.67 (38.212 7.2.2)
LDPC_BG2_K_MID = 3824
#: lowest code rate of base graph 1 (without repetition of the circular buffer)
LDPC_BG1_MIN_RATE = 1 / 3


def max_block_for_rate(rate: float) -> int:
    """Largest code block (info bits) 5G LDPC supports at code rate ``rate``.

    Base graph 1 cannot go below rate 1/3, so below 1/3 every block must stay on
    base graph 2: up to 3840 bits at rates <= 1/4, up to 3824 between 1/4 and 1/3
    (above 3824 bits 38.212 would pick base graph 1 there).
    """
    if rate <= 0.25:
        return LDPC_MAX_K_BG2
    return LDPC_BG2_K_MID if rate < LDPC_BG1_MIN_RATE else LDPC_MAX_K


def base_graph(k: int, rate: float) -> str:
    """The base graph 38.212 (and Sionna) picks for ``k`` info bits at realised ``rate``."""
    if k <= 292 or (k <= LDPC_BG2_K_MID and rate <= 0.67) or rate <= 0.25:
        return "bg2"
    return "bg1"


def ldpc_codeword_length(k: int, rate: float, m: int) -> int:
    """Rate-matched length ``n`` (bits) for ``k`` info bits at target ``rate`` with ``m``
    bits per symbol.

    ``ceil(k / rate)`` (a rate given as ``k / n`` gives back ``n`` despite float
    rounding), rounded up to a multiple of ``m`` so codewords fill whole symbols.
    Rounding up lowers the realised rate ``k / n``; where that would leave what the
    code supports it is rounded down instead: below 1/5, or below 1/3 for a block
    on base graph 1 (``k > 3824`` at rates above 1/4). The realised rate then sits
    just above the target.
    """
    exact = k / rate
    n = math.ceil(exact * (1 - 1e-12))
    n = -(-n // m) * m
    if k / n < LDPC_MIN_RATE:
        n = int(k / LDPC_MIN_RATE) // m * m
    if base_graph(k, k / n) == "bg1" and k / n < LDPC_BG1_MIN_RATE:
        n = int(k / LDPC_BG1_MIN_RATE * (1 + 1e-12)) // m * m
    return n


class LDPCCode:
    """5G NR LDPC (Sionna) with rate matching and the 38.212 bit interleaver.

    :param k: Information bits per codeword (12 .. 8448; at most
        :func:`max_block_for_rate` at ``rate``).
    :param rate: Target code rate in [1/5, 0.95]; the realised rate is ``k / n``
        (:func:`ldpc_codeword_length`).
    :param m: Bits per symbol, for the rate-matching interleaver.
    :param iterations: Belief-propagation iterations.
    :param cn_update: Sionna check-node rule: ``"boxplus-phi"`` (exact BP),
        ``"boxplus"``, ``"minsum"`` or ``"offset-minsum"`` (cheaper, ~0.2-0.5 dB worse).
    """

    CN_UPDATES = ("boxplus-phi", "boxplus", "minsum", "offset-minsum")

    def __init__(self, k: int, rate: float, m: int, iterations: int = 20,
                 cn_update: str = "boxplus-phi", precision: str = "single", device: str = "cpu"):
        if not LDPC_MIN_RATE <= rate <= LDPC_MAX_RATE:
            raise ValueError(f"rate must be in [{LDPC_MIN_RATE}, {LDPC_MAX_RATE}], got {rate}")
        if not LDPC_MIN_K <= k <= max_block_for_rate(rate):
            raise ValueError(f"k must be in [{LDPC_MIN_K}, {max_block_for_rate(rate)}] at rate "
                             f"{rate:.4g} (5G base graphs), got {k}")
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
