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

Blocks travel in batches of :meth:`DigitalPipe.batch_size` (about
:data:`BATCH_BYTES` of per-block tensors, a multiple of 8 blocks), so the pipe's
memory is one batch plus the payload-sized input and output bits, whatever the
payload. Each batch is one call of the channel. Measured (CPU generator): on
AWGN the noise of batches of a multiple of 8 blocks is exactly the noise of one
call for all blocks (``torch.randn`` draws its uniforms in order and applies
Box-Muller to aligned groups of 16 values, so a cut after a multiple of 16 values,
i.e. 8 blocks' complex symbols, changes nothing; the same holds for any cut when
the symbols per block are a multiple of 8), so the results do not depend on the
batch size; other cuts, a CUDA generator and fading channels (which draw the
gains of a call before its noise) give different but equally distributed draws.
A payload of at most one batch (every short clip) is sent in one call, as before.
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

#: working set of one batch of code blocks in the pipe (bytes, an estimate: see
#: :meth:`DigitalPipe.batch_size`)
BATCH_BYTES = 64 << 20
#: bytes per codeword bit and per information bit that a block's tensors take at once
#: (float codeword, symbols, noise, received symbols, LLRs, decoder messages;
#: info bits, CRC-coded bits, decoded bits): measured, rounded up
BYTES_PER_CODED_BIT = 80
BYTES_PER_INFO_BIT = 32

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
    :param batch_blocks: code blocks sent per batch (default: :meth:`batch_size`).
    """

    def __init__(self, modulation: str = "qpsk", coding: str = "ldpc5g", rate: float = 0.5,
                 max_block: int = LDPC_MAX_K, crc: str = "CRC24B",
                 decoding: LDPCDecoding | None = None, demapping: str = "app",
                 precision: str = "single", device: str = "cpu", batch_blocks: int | None = None):
        self.m = bits_per_symbol(modulation)
        if batch_blocks is not None and batch_blocks < 1:
            raise ValueError(f"batch_blocks must be >= 1, got {batch_blocks}")
        #: code blocks per batch (None: from :data:`BATCH_BYTES`, see :meth:`batch_size`)
        self.batch_blocks = batch_blocks
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
    def batch_size(self, k: int, n: int) -> int:
        """Code blocks per batch: :attr:`batch_blocks` if set, else as many as fit
        :data:`BATCH_BYTES` at :data:`BYTES_PER_CODED_BIT` per codeword bit and
        :data:`BYTES_PER_INFO_BIT` per information bit, rounded down to a multiple
        of 8 (at least 8)."""
        if self.batch_blocks is not None:
            return self.batch_blocks
        per_block = BYTES_PER_CODED_BIT * n + BYTES_PER_INFO_BIT * k
        return max(8, BATCH_BYTES // per_block // 8 * 8)

    def __call__(self, bits: torch.Tensor, channel: Channel, no: float,
                 generator: torch.Generator) -> DigitalResult:
        """:input bits: [L] {0, 1} (any int/bool/float dtype). :output: DigitalResult.

        The blocks go through the link in batches of :meth:`batch_size` blocks, so
        the per-block tensors (codewords, symbols, noise, LLRs, decoder state) take
        one batch's memory whatever ``L``; the output ``bits`` is payload-sized.
        """
        bits = torch.as_tensor(bits).reshape(-1)
        num = bits.numel()
        c, kp = self.segmentation(num)
        if c == 0:
            empty = torch.zeros(0, dtype=torch.uint8)
            return DigitalResult(empty, torch.zeros(0, dtype=torch.bool), 0, 0, 0, 0, 0)
        device = self._opts["device"]
        link = self._link(kp + self.crc_len)
        step = self.batch_size(link.k, link.n)
        out = torch.empty(num, dtype=torch.uint8, device=device)
        oks = []
        uses = coded = raw = bit_err = block_err = 0
        its = 0
        for b0 in range(0, c, step):
            nb = min(step, c - b0)
            lo, hi = b0 * kp, min((b0 + nb) * kp, num)
            u = torch.zeros(nb * kp, dtype=torch.float32, device=device)
            u[:hi - lo] = bits[lo:hi].to(device, torch.float32)
            u = u.reshape(nb, kp)
            if self.crc_len:
                crc_enc, crc_dec = self._crc_pair(kp)
                u_tx = crc_enc(u)
            else:
                u_tx = u
            res = link(u_tx, channel, no, generator)
            del u_tx
            if self.crc_len:
                u_hat, ok = crc_dec(res.u_hat)
                ok = ok.reshape(nb).bool()
            else:
                u_hat, ok = res.u_hat, torch.ones(nb, dtype=torch.bool)
            if res.finite is not None:  # a non-finite block never passes
                ok = ok & res.finite.reshape(nb).to(ok.device)
            oks.append(ok)
            wrong = u_hat != u
            out[lo:hi] = u_hat.reshape(-1)[:hi - lo].to(torch.uint8)
            uses += res.channel_uses
            coded += res.coded_bits
            raw += res.raw_bit_errors
            bit_err += int(wrong.reshape(-1)[:hi - lo].sum())
            block_err += int(wrong.any(dim=1).sum())
            its = None if res.iterations is None or its is None else its + int(np.sum(res.iterations))
            del res, u, u_hat, wrong
        ok = oks[0] if len(oks) == 1 else torch.cat(oks)
        return DigitalResult(out, ok, uses, coded, raw, bit_err, block_err, its)
