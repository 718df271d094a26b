"""Block codes over which the digital pipe runs: 5G NR LDPC or no code."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from .ldpc_fast import CN_RULES, SCHEDULES, FastLDPC5GDecoder

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


#: check-node rules each decoder takes; ``sum-product`` and ``boxplus-phi`` name the
#: same exact rule, each decoder accepts the other's name for it
SIONNA_CN_UPDATES = ("boxplus-phi", "boxplus", "minsum", "offset-minsum")
DECODERS = ("auto", "fast", "sionna")
_SAME_RULE = {"sum-product": "boxplus-phi", "boxplus-phi": "sum-product"}


@dataclass(frozen=True)
class LDPCDecoding:
    """How 5G LDPC codewords are decoded (fixed settings, validated).

    :param decoder: ``"fast"`` (compiled CPU decoder, :mod:`~lgvsc.link.ldpc_fast`),
        ``"sionna"`` (Sionna's PyTorch decoder: the GPU path) or ``"auto"``: fast on
        a CPU device, Sionna on CUDA.
    :param iterations: most BP iterations per codeword.
    :param cn_update: check-node rule; fast: ``sum-product`` (default),
        ``normalized-min-sum``, ``offset-min-sum``; Sionna: ``boxplus-phi``
        (default), ``boxplus``, ``minsum``, ``offset-minsum``.
    :param schedule: fast only: ``layered`` (default) or ``flooding`` (Sionna's).
    :param alpha: fast normalized min-sum factor (default 0.75 flooding, 0.7 layered).
    :param beta: fast offset min-sum offset (default 0.5, as Sionna's offset-minsum).
    :param early_stop: fast only: stop a codeword at a zero syndrome.
    """

    decoder: str = "auto"
    iterations: int = 20
    cn_update: str | None = None
    schedule: str | None = None
    alpha: float | None = None
    beta: float | None = None
    early_stop: bool = True

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if isinstance(self.iterations, bool) or int(self.iterations) != self.iterations \
                or self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {self.iterations!r}")

    def resolved(self, device: str = "cpu") -> "LDPCDecoding":
        """The settings with ``auto`` and every default filled in for ``device``;
        raises ``ValueError`` naming the parameter for a setting the decoder lacks."""
        dec = self.decoder
        if dec == "auto":
            dec = "sionna" if str(device).startswith("cuda") else "fast"
        rules = CN_RULES if dec == "fast" else SIONNA_CN_UPDATES
        rule = self.cn_update or rules[0]
        if rule not in rules:
            rule = _SAME_RULE.get(rule, rule)
        if rule not in rules:
            raise ValueError(f"cn_update must be one of {', '.join(rules)} for decoder {dec!r}, "
                             f"got {self.cn_update!r}")
        if dec == "sionna":
            for name in ("schedule", "alpha", "beta"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to decoder 'fast' only (Sionna's decoder "
                                     f"floods, with its own rules), got {getattr(self, name)!r}")
            return replace(self, decoder=dec, cn_update=rule, early_stop=False)
        schedule = self.schedule or "layered"
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        return replace(self, decoder=dec, cn_update=rule, schedule=schedule)


class LDPCCode:
    """5G NR LDPC (Sionna's encoder) with rate matching and the 38.212 bit interleaver,
    decoded by the fast compiled decoder or by Sionna's.

    :param k: Information bits per codeword (12 .. 8448; at most
        :func:`max_block_for_rate` at ``rate``).
    :param rate: Target code rate in [1/5, 0.95]; the realised rate is ``k / n``
        (:func:`ldpc_codeword_length`).
    :param m: Bits per symbol, for the rate-matching interleaver.
    :param decoding: :class:`LDPCDecoding` (default: ``auto``, 20 iterations).

    :attr:`last_iterations`: [B] int, the iterations each codeword of the last
    :meth:`decode` ran (Sionna's decoder always runs all of them).
    """

    def __init__(self, k: int, rate: float, m: int, decoding: LDPCDecoding | None = None,
                 precision: str = "single", device: str = "cpu"):
        if not LDPC_MIN_RATE <= rate <= LDPC_MAX_RATE:
            raise ValueError(f"rate must be in [{LDPC_MIN_RATE}, {LDPC_MAX_RATE}], got {rate}")
        if not LDPC_MIN_K <= k <= max_block_for_rate(rate):
            raise ValueError(f"k must be in [{LDPC_MIN_K}, {max_block_for_rate(rate)}] at rate "
                             f"{rate:.4g} (5G base graphs), got {k}")
        d = self.decoding = (decoding or LDPCDecoding()).resolved(device)
        self.k = k
        self.n = ldpc_codeword_length(k, rate, m)
        self._enc = LDPC5GEncoder(k, self.n, num_bits_per_symbol=m,
                                  precision=precision, device=device, check_input=False)
        if d.decoder == "fast":
            self._dec = FastLDPC5GDecoder(self._enc, d.schedule, d.cn_update, d.iterations,
                                          d.alpha, d.beta, d.early_stop)
        else:
            self._dec = LDPC5GDecoder(self._enc, cn_update=d.cn_update, num_iter=d.iterations,
                                      hard_out=True, return_infobits=True, precision=precision,
                                      device=device)
        self.last_iterations = np.zeros(0, dtype=np.int32)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """[..., k] float bits -> [..., n] float bits."""
        return self._enc(u)

    def decode(self, llr: torch.Tensor) -> torch.Tensor:
        """[..., n] LLRs (log p1/p0) -> [..., k] hard bits (float)."""
        out = self._dec(llr)
        if self.decoding.decoder == "fast":
            self.last_iterations = self._dec.last_iterations
        else:
            blocks = llr.numel() // self.n
            self.last_iterations = np.full(blocks, self.decoding.iterations, dtype=np.int32)
        return out


class NoCode:
    """Uncoded transmission: ``n = k`` (k a multiple of ``m``), hard decisions."""

    #: no iterative decoder
    last_iterations = None

    def __init__(self, k: int, m: int):
        if k < 1 or k % m:
            raise ValueError(f"k must be a positive multiple of {m} bits, got {k}")
        self.k = self.n = k

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        return u

    def decode(self, llr: torch.Tensor) -> torch.Tensor:
        return (llr > 0).to(llr.dtype)
