"""The digital pipe: arbitrary bit payloads over coded QAM.

payload bits -> equal-size code-block segmentation (38.212 style) with a CRC
per block -> 5G LDPC with rate matching (or no code) -> Gray QAM -> channel
-> perfect-CSI soft demapping -> BP decoding -> CRC check -> payload bits.

Erroneous blocks are *not* dropped: their decoded bits pass through to the
caller (a video decoder then sees the residual bit errors, which is what
gives a digital system its cliff), and ``crc_ok`` tells which blocks failed.
The filler bits that pad the last block are zeros known to both ends.

A block whose LLRs or decoded bits are not all finite (a numerical failure
the receiver sees) is failed whatever its CRC says: NaN LLRs tend to decode
to the all-zero word, whose CRC is valid, so trusting the CRC there would
report a wrong block as received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

from .channels import Channel
from .code import (LDPC_MAX_K, LDPC_MAX_RATE, LDPC_MIN_K, LDPC_MIN_RATE, LDPCCode, LDPCDecoding,
                   NoCode, ldpc_codeword_length, max_block_for_rate)
from .modem import Modem, bits_per_symbol

CRC_LENGTHS = {"none": 0, "CRC24A": 24, "CRC24B": 24, "CRC24C": 24, "CRC16": 16,
               "CRC11": 11, "CRC6": 6}


@dataclass
class BlockResult:
    """Outcome of sending a batch of code blocks.

    ``u_hat`` [B, k] float hard bits; ``raw_bit_errors`` / ``coded_bits``: hard
    decisions on the channel LLRs before decoding; ``channel_uses``: complex
    symbols sent; ``finite`` [B] bool: the block's LLRs and decoded bits were
    all finite (None: not checked; a non-finite block is a failed block);
    ``iterations`` [B] int: decoder iterations per block (None: no iterative decoder).
    """

    u_hat: torch.Tensor
    raw_bit_errors: int
    coded_bits: int
    channel_uses: int
    finite: torch.Tensor | None = None
    iterations: np.ndarray | None = None


def finite_blocks(*tensors: torch.Tensor) -> torch.Tensor:
    """[B] bool: True for each block (first axis) whose values in every one of
    ``tensors`` ([B, ...] each) are all finite."""
    ok = None
    for t in tensors:
        f = torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)
        ok = f if ok is None else ok & f
    return ok


class BlockLink:
    """Sends batches of ``k``-bit blocks through code + modem + channel.

    :input u: [B, k] float {0, 1}.
    :input channel: a :class:`~lgvsc.link.channels.Channel`.
    :input no: complex noise variance (``snr_db_to_no``).
    :input generator: ``torch.Generator`` for the channel draw.
    """

    def __init__(self, code, modem: Modem):
        if code.n % modem.m:
            raise ValueError(f"codeword length {code.n} is not a multiple of {modem.m} bits")
        self.code, self.modem = code, modem

    @property
    def k(self) -> int:
        return self.code.k

    @property
    def n(self) -> int:
        return self.code.n

    def __call__(self, u: torch.Tensor, channel: Channel, no: float,
                 generator: torch.Generator) -> BlockResult:
        c = self.code.encode(u)
        x = self.modem.modulate(c)
        y, h = channel(x, no, generator)
        llr = self.modem.demodulate(y, h, no)
        raw = int(((llr > 0).to(c.dtype) != c).sum())
        u_hat = self.code.decode(llr)
        return BlockResult(u_hat, raw, c.numel(), x.numel(), finite_blocks(llr, u_hat),
                           self.code.last_iterations)


@dataclass
class DigitalResult:
    """What the digital pipe delivers.

    ``bits``: [L] uint8 decoded payload (errors included); ``crc_ok``: [C] bool,
    what the receiver knows; the rest are simulator-side counts (``iterations``:
    decoder iterations summed over the blocks, None when uncoded).
    """

    bits: torch.Tensor
    crc_ok: torch.Tensor
    channel_uses: int
    coded_bits: int
    raw_bit_errors: int
    bit_errors: int
    block_errors: int
    iterations: int | None = None

    @property
    def num_blocks(self) -> int:
        return int(self.crc_ok.numel())


class DigitalPipe:
    """Arbitrary-length payloads over LDPC-coded (or uncoded) QAM.

    :param modulation: ``bpsk | qpsk | qam16 | qam64 | qam256``.
    :param coding: ``"ldpc5g"`` or ``"uncoded"``.
    :param rate: LDPC code rate in [1/5, 0.95] (ignored when uncoded).
    :param max_block: Largest code block in info bits, CRC included (<= 8448; capped
        by :func:`~lgvsc.link.code.max_block_for_rate`: 3840 at rates <= 1/4 and
        3824 below 1/3, where 5G must use base graph 2).
    :param crc: Per-block CRC polynomial (Sionna names) or ``"none"``.
    :param decoding: :class:`~lgvsc.link.code.LDPCDecoding` (decoder, iterations,
        check-node rule, schedule; default ``auto``: the fast decoder on a CPU).
    """

    def __init__(self, modulation: str = "qpsk", coding: str = "ldpc5g", rate: float = 0.5,
                 max_block: int = LDPC_MAX_K, crc: str = "CRC24B",
                 decoding: LDPCDecoding | None = None, demapping: str = "app",
                 precision: str = "single", device: str = "cpu"):
        self.m = bits_per_symbol(modulation)
        if coding not in ("ldpc5g", "uncoded"):
            raise ValueError(f"coding must be 'ldpc5g' or 'uncoded', got {coding!r}")
        if crc not in CRC_LENGTHS:
            raise ValueError(f"crc must be one of {', '.join(CRC_LENGTHS)}, got {crc!r}")
        self.crc_len = CRC_LENGTHS[crc]
        if not self.crc_len + 1 <= max_block <= LDPC_MAX_K:
            raise ValueError(f"max_block must be in [{self.crc_len + 1}, {LDPC_MAX_K}], got {max_block}")
        if coding == "ldpc5g" and not LDPC_MIN_RATE <= rate <= LDPC_MAX_RATE:
            raise ValueError(f"rate must be in [{LDPC_MIN_RATE}, {LDPC_MAX_RATE}], got {rate}")
        if coding == "ldpc5g":  # below rate 1/3 only base graph 2 works: <= 3840 / 3824 bits
            max_block = min(max_block, max_block_for_rate(rate))
        self.coding, self.rate, self.max_block, self.crc = coding, rate, max_block, crc
        self.decoding = (decoding or LDPCDecoding()).resolved(device)
        self._opts = dict(precision=precision, device=device)
        self.modem = Modem(modulation, demapping, **self._opts)
        self._links: dict[int, BlockLink] = {}
        self._crc: dict[int, tuple[CRCEncoder, CRCDecoder]] = {}

    # -- segmentation -------------------------------------------------------
    def segmentation(self, num_bits: int) -> tuple[int, int]:
        """(number of blocks C, payload bits per block) for a ``num_bits`` payload.

        C = ceil(L / (max_block - crc)) equal blocks of ceil(L / C) payload bits,
        the last padded with known filler. An LDPC block (CRC included) has at
        least 12 bits, the smallest 5G block; an uncoded one fills whole symbols.
        """
        if num_bits == 0:
            return 0, 0
        per_block = self.max_block - self.crc_len
        c = math.ceil(num_bits / per_block)
        kp = math.ceil(num_bits / c)
        if self.coding == "uncoded":  # whole symbols per block
            kp = math.ceil((kp + self.crc_len) / self.m) * self.m - self.crc_len
        else:
            kp = max(kp, LDPC_MIN_K - self.crc_len)
        return c, kp

    def channel_uses(self, num_bits: int) -> int:
        """Complex channel uses a ``num_bits`` payload costs (no transmission needed)."""
        c, kp = self.segmentation(num_bits)
        if c == 0:
            return 0
        k = kp + self.crc_len
        n = ldpc_codeword_length(k, self.rate, self.m) if self.coding == "ldpc5g" else k
        return c * n // self.m

    def _link(self, k: int) -> BlockLink:
        if k not in self._links:
            code = (LDPCCode(k, self.rate, self.m, self.decoding, **self._opts)
                    if self.coding == "ldpc5g" else NoCode(k, self.m))
            self._links[k] = BlockLink(code, self.modem)
        return self._links[k]

    def _crc_pair(self, k: int):
        if k not in self._crc:
            enc = CRCEncoder(self.crc, k=k, **self._opts)
            self._crc[k] = (enc, CRCDecoder(enc, **self._opts))
        return self._crc[k]

    # -- transmission -------------------------------------------------------
    def __call__(self, bits: torch.Tensor, channel: Channel, no: float,
                 generator: torch.Generator) -> DigitalResult:
        """:input bits: [L] {0, 1} (any int/bool/float dtype). :output: DigitalResult."""
        bits = torch.as_tensor(bits).reshape(-1)
        num = bits.numel()
        c, kp = self.segmentation(num)
        if c == 0:
            empty = torch.zeros(0, dtype=torch.uint8)
            return DigitalResult(empty, torch.zeros(0, dtype=torch.bool), 0, 0, 0, 0, 0)
        u = torch.zeros(c * kp, dtype=torch.float32, device=self._opts["device"])
        u[:num] = bits.to(u.device, torch.float32)
        u = u.reshape(c, kp)
        if self.crc_len:
            crc_enc, crc_dec = self._crc_pair(kp)
            u_tx = crc_enc(u)
        else:
            u_tx = u
        res = self._link(kp + self.crc_len)(u_tx, channel, no, generator)
        if self.crc_len:
            u_hat, ok = crc_dec(res.u_hat)
            ok = ok.reshape(c).bool()
        else:
            u_hat, ok = res.u_hat, torch.ones(c, dtype=torch.bool)
        if res.finite is not None:  # a non-finite block never passes
            ok = ok & res.finite.reshape(c).to(ok.device)
        wrong = u_hat != u
        out = u_hat.reshape(-1)[:num].to(torch.uint8)
        its = None if res.iterations is None else int(np.sum(res.iterations))
        return DigitalResult(out, ok, res.channel_uses, res.coded_bits, res.raw_bit_errors,
                             int(wrong.reshape(-1)[:num].sum()), int(wrong.any(dim=1).sum()), its)
