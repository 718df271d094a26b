"""``codec-ldpc``: H.264 / H.265 over 5G LDPC + QAM (the paper's digital baseline).

What is protected and how errors propagate: the encoder's bitstream is ONE
payload for the digital pipe, cut into equal code blocks with a CRC each.
Blocks that fail are not retransmitted or dropped: their decoded bits, errors
and all, go to the video decoder, which conceals what it cannot decode
(repeating the last good frame in display order). Above the LDPC waterfall
every block decodes and quality is the codec's; a little below it, most
blocks carry errors, the bitstream falls apart, and quality collapses: the
cliff. A decoder that crashes or times out on a bitstream whose CRCs all
passed also fails the trial (part ``decoder``).

Memory (a clip of F frames of H x W, bitstream of B bytes): the encoder reads
the clip frame by frame and keeps only its packets; the transmission then holds
the bitstream (B bytes, cached per clip and settings), its bits (8B bytes in,
8B bytes out of the pipe), one batch of code blocks in the digital pipe
(:data:`~lgvsc.link.digital.BATCH_BYTES`, ~64 MB), the decoder child's pictures
(its own address-space limit, :func:`~lgvsc.sim.codecs.memory_limit`) and, in
this process, a reorder window of :data:`~lgvsc.sim.codecs.REORDER_WINDOW`
decoded frames plus one chunk of :data:`~lgvsc.sim.codecs.CHUNK_FRAMES` frames
(3HW bytes each): ``~ 17B + 64 MB + (W + C) x 3HW``, independent of F beyond B.
The received frames are a :class:`~lgvsc.sim.schemes.transmission.FrameStream`
decoded while it is read; ``frames_concealed``, ``decoder_status`` and the
``decoder`` failure are final once it has been read (the transmission refuses
its accounting before that).

What is charged (``charge``):

* ``stream`` (default): the elementary stream, one packet per frame with its
  parameter sets in band. The packet lengths and display indices are assumed
  known at the receiver (RTP or container framing) and are not charged. This
  is the fair choice: it is what a decoder needs and what a streaming link
  carries; an mp4 file adds its index (``moov``: per-sample sizes, times,
  sync samples), the encoder's banner SEI and box headers, a few kB that do
  not grow with the picture, so at CBR ~1e-3 on a short clip they inflate the
  cost by 1.1-1.9x: a price of the storage format, not of the codec, and one
  that no other scheme here pays for its own payload.
* ``container``: what the authors' code charges, the whole ``.mp4`` file that
  ``ffmpeg -i in.mp4 -c:v libx26x ... out.mp4`` writes (global headers in
  ``avcC``/``hvcC``, muxed in memory by FFmpeg's mov muxer through PyAV). The
  pipe carries the elementary-stream packets followed by the container's own
  overhead bits (file size minus stream size, taken from the file's
  non-sample boxes: ``ftyp``, ``moov``, the ``mdat`` header), so exactly the
  file's size is sent; a CRC failure in either fails the trial, and the
  receiver decodes the packets as with ``stream``. ``extra`` records
  ``stream_bits`` and ``container_bits`` (if the in-band stream is the larger
  one, e.g. parameter sets repeated at many keyframes, the stream is sent
  alone and charged).

The authors' CBR is ``file bits x n / (k x bits_per_symbol x 3HW) / F`` with
fixed blocks of ``k`` bits and no CRC; lgvsc charges the channel uses actually
sent: equal blocks of at most ``max_block`` bits with a 24-bit CRC each, so
the same ``(k, n)`` code costs ~0.4% more.

Per-SNR settings: ``preset: paper-table1`` (the paper's Table I),
``preset: authors-code`` (the settings in the authors' scripts: per-SNR LDPC
``(k, n)`` and modulation, ``ultrafast`` encoders, x264 ``baseline``, x265
with its preset's B-frames and wavefronts, as ``ffmpeg`` runs it), or a
``table:`` of rows; SNRs between or
outside rows use the nearest row. Top-level settings override the table.

``target_cbr``: the QP is the smallest (best quality) whose CBR fits at the
configured (highest) code rate; the channel uses left over are then spent on
a stronger code (5G rate matching allows any codeword length ``n >= k /
rate``): the lowest rate, >= 1/5, whose codewords fill the budget, so the CBR
lands in [0.97, 1] x target (``code_rate`` in ``extra``) or the trial raises
:class:`~lgvsc.link.cbr.BudgetError` saying what would fit.
"""

from __future__ import annotations

import csv
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import Annotated, Literal

import numpy as np

from pydantic import ConfigDict, Field, model_validator

from ...link import theory
from ...link.bits import bits_to_bytes, bytes_to_bits
from ...link.cbr import BUDGET_FLOOR, BudgetError, cbr
from ...link.channels import snr_db_to_no
from ...link.code import (LDPC_MAX_K, LDPC_MAX_RATE, LDPC_MIN_RATE, ldpc_codeword_length,
                          max_block_for_rate)
from ...link.digital import DigitalPipe
from ...link.modem import bits_per_symbol
from .. import codecs
from ..limits import InputModel
from . import SCHEMES, DecodingConfig
from .fields import Modulation, Rate, parse_rate
from .transmission import FrameStream, MeasuredBER, Transmission, VideoScheme

Speed = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow"]
Profile = Literal["baseline", "main", "high"]
#: B-frames: a count, or "preset" for the x264/x265 preset's own default
BFrames = Annotated[int, Field(ge=0, le=16)] | Literal["preset"]
PRESET_FILES = {"paper-table1": "table1_h26x_ldpc.csv", "authors-code": "authors_code_h26x_ldpc.csv"}
MOD_NAMES = {"bpsk": "BPSK", "qpsk": "QPSK", "qam16": "16-QAM", "qam64": "64-QAM",
             "qam256": "256-QAM"}
DEFAULTS = dict(qp=37, gop=12, rate=0.5, modulation="qpsk", max_block=LDPC_MAX_K,
                speed="medium", profile=None, bframes=0, wpp=False)


class TableRow(InputModel):
    model_config = ConfigDict(extra="forbid")
    snr_db: float
    qp: int | None = Field(None, ge=0, le=51)
    gop: int | None = Field(None, gt=0)
    rate: Rate | None = None
    modulation: Modulation | None = None
    max_block: int | None = Field(None, ge=64, le=LDPC_MAX_K,
                                  description="largest LDPC code block (bits, CRC included)")
    speed: Speed | None = None
    profile: Profile | None = None
    bframes: BFrames | None = None
    wpp: bool | None = None


def _opt(v: str):
    return v.strip() or None


def _row(r: dict) -> TableRow:
    bf = _opt(r.get("bframes", ""))
    return TableRow(snr_db=float(r["snr_db"]), qp=int(r["qp"]), gop=int(r["gop"]),
                    rate=parse_rate(r["ldpc_rate"]), modulation=r["modulation"],
                    max_block=int(r["max_block"]) if _opt(r.get("max_block", "")) else None,
                    speed=_opt(r.get("speed", "")), profile=_opt(r.get("profile", "")),
                    bframes=bf if bf in (None, "preset") else int(bf),
                    wpp=bool(int(r["wpp"])) if _opt(r.get("wpp", "")) else None)


@lru_cache(maxsize=None)
def preset_rows(preset: str, codec: str) -> tuple[TableRow, ...]:
    """The rows of ``preset`` (``paper-table1`` | ``authors-code``) for ``codec``."""
    if preset not in PRESET_FILES:
        raise ValueError(f"preset must be one of {', '.join(PRESET_FILES)}, got {preset!r}")
    text = resources.files("lgvsc.sim").joinpath(f"data/{PRESET_FILES[preset]}").read_text()
    return tuple(_row(r) for r in csv.DictReader(text.splitlines()) if r["codec"] == codec)


def paper_table1(codec: str) -> tuple[TableRow, ...]:
    """The paper's Table I rows for ``codec`` (h264 | h265)."""
    return preset_rows("paper-table1", codec)


class CodecLDPCConfig(DecodingConfig):
    codec: Literal["h264", "h265"]
    preset: Literal["paper-table1", "authors-code"] | None = Field(
        None, description="per-SNR settings preset")
    table: list[TableRow] | None = Field(None, min_length=1, description="per-SNR settings rows")
    qp: int | None = Field(None, ge=0, le=51)
    gop: int | None = Field(None, gt=0, description="keyframe interval (keyint)")
    rate: Rate | None = Field(None, description="LDPC code rate (the highest with target_cbr)")
    modulation: Modulation | None = None
    target_cbr: float | None = Field(None, gt=0, description="spend [0.97, 1] x this CBR")
    speed: Speed | None = Field(None, description="x264/x265 preset (default medium)")
    profile: Profile | None = Field(None, description="x264 profile (h264 only)")
    bframes: BFrames | None = Field(None, description="B-frames: a count or 'preset' (default 0)")
    wpp: bool | None = Field(None, description="x265 wavefront parallel processing (default off)")
    pix_fmt: Literal["yuv420p", "yuv444p"] = "yuv420p"
    charge: Literal["stream", "container"] = Field(
        "stream", description="charge the elementary stream or the whole mp4 file")
    max_block: int | None = Field(None, ge=64, le=LDPC_MAX_K,
                                  description="largest LDPC code block (bits, CRC included; default 8448)")
    decode_timeout_s: float | None = Field(None, gt=0, le=86400, description="seconds (<= a day)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.preset and self.table:
            raise ValueError("give either preset or table, not both")
        if self.target_cbr is not None and self.qp is not None:
            raise ValueError("give either qp or target_cbr, not both")
        for snr in [r.snr_db for r in self.rows()] or [0.0]:
            s = self.settings(snr)
            if s["rate"] > LDPC_MAX_RATE:
                raise ValueError(f"rate must be <= {LDPC_MAX_RATE} (5G LDPC), got {s['rate']:.4g}")
            codecs._check_encoder_args(self.codec, s["qp"], s["gop"], s["profile"],
                                       None if s["bframes"] == "preset" else s["bframes"], s["wpp"])
        return self

    def rows(self) -> tuple[TableRow, ...]:
        if self.preset:
            return preset_rows(self.preset, self.codec)
        return tuple(self.table or ())

    def row_at(self, snr_db: float) -> TableRow | None:
        """The row in force at ``snr_db`` (the nearest; the higher one on a tie)."""
        rows = self.rows()
        return min(rows, key=lambda r: (abs(r.snr_db - snr_db), -r.snr_db)) if rows else None

    def settings(self, snr_db: float) -> dict:
        """QP, GOP, code rate, modulation, block size and encoder options at ``snr_db``:
        a top-level value, else the row's, else the default."""
        row = self.row_at(snr_db)

        def pick(key):
            for src in (self, row):
                if src is not None and getattr(src, key) is not None:
                    return getattr(src, key)
            return DEFAULTS[key]

        return {key: pick(key) for key in DEFAULTS}

    def operating_points(self, snrs: list[float]) -> list[tuple[float, bool]]:
        """(SNR, from a row?) at which settings are in force: each row used at one of
        ``snrs`` (every row when ``snrs`` is empty), else each of ``snrs``."""
        rows = self.rows()
        if rows:
            used = {self.row_at(s).snr_db for s in snrs} if snrs else {r.snr_db for r in rows}
            return [(s, True) for s in sorted(used)]
        return [(float(s), False) for s in sorted(snrs)]


def _fraction(rate: float) -> str:
    fr = Fraction(rate).limit_denominator(64)
    return f"{fr.numerator}/{fr.denominator}" if abs(float(fr) - rate) < 1e-9 else f"{rate:.4g}"


def capacity_warning(name: str, snr_db: float, rate: float, modulation: str,
                     row: bool = True) -> str | None:
    """One line when ``rate x bits/symbol`` exceeds the ``modulation``-constrained AWGN
    capacity at ``snr_db`` (Es/N0, dB): no code of that rate can decode there."""
    eta = rate * bits_per_symbol(modulation)
    cap = theory.capacity(snr_db, modulation)
    if eta <= cap:
        return None
    mod = MOD_NAMES[modulation]
    need = theory.shannon_limit_db(rate, modulation)
    where = f"row {snr_db:g} dB" if row else f"at {snr_db:g} dB"
    return (f"{name}: {where} ({mod}, rate {_fraction(rate)} = {eta:.2f} bit/use) exceeds the "
            f"{mod} capacity at {snr_db:g} dB ({cap:.1f} bit/use); it needs >= {need:.1f} dB")


def container_overhead(mp4: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``mp4``'s non-sample data: every top-level box but
    the ``mdat`` payload (whose header is kept)."""
    out, pos = bytearray(), 0
    while pos + 8 <= len(mp4) and len(out) < size:
        box = int.from_bytes(mp4[pos:pos + 4], "big")
        head = 8
        if box == 1:
            box, head = int.from_bytes(mp4[pos + 8:pos + 16], "big"), 16
        box = box or len(mp4) - pos  # size 0: to the end of the file
        out += mp4[pos:pos + (head if mp4[pos + 4:pos + 8] == b"mdat" else box)]
        pos += box
    if len(out) < size:
        raise RuntimeError(f"mp4 has {len(out)} bytes outside its samples, {size} needed")
    return bytes(out[:size])


@SCHEMES.register("codec-ldpc")
class CodecLDPC(VideoScheme):
    Config = CodecLDPCConfig
    measured_ber = MeasuredBER("the H.26x bitstream (the video itself)", video=True)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self._encoded: dict = {}
        self._pipes: dict = {}

    @classmethod
    def check_video(cls, cfg: CodecLDPCConfig, video, where: str) -> list[str]:
        """4:2:0 chroma needs an even height and width (x264/x265 refuse odd ones)."""
        if cfg.pix_fmt == "yuv420p" and (video.height % 2 or video.width % 2):
            raise ValueError(f"{where}: {cfg.codec} with pix_fmt yuv420p needs an even frame "
                             f"size; video {video.label!r} is {video.height}x{video.width} "
                             "(set the video's size: [H, W] to even numbers, or pix_fmt: yuv444p)")
        return []

    @classmethod
    def warnings(cls, cfg: CodecLDPCConfig, snrs: list[float]) -> list[str]:
        """One line per operating point (table row in use, or scenario SNR without a
        table) whose spectral efficiency exceeds the QAM-constrained capacity there."""
        out = []
        for snr, row in cfg.operating_points(list(snrs)):
            s = cfg.settings(snr)
            line = capacity_warning(cfg.name, snr, s["rate"], s["modulation"], row)
            if line:
                out.append(line)
        return out

    # -- source coding ------------------------------------------------------
    @staticmethod
    def _key(video, s: dict, global_header: bool) -> tuple:
        return (video.name, id(video.frames), s["qp"], s["gop"], s["speed"], s["profile"],
                s["bframes"], s["wpp"], global_header)

    def _encode(self, video, s: dict, global_header: bool = False) -> codecs.Bitstream:
        bf = None if s["bframes"] == "preset" else s["bframes"]
        key = self._key(video, s, global_header)
        if key not in self._encoded:
            self._encoded[key] = codecs.encode(video.frames, self.cfg.codec, s["qp"], s["gop"],
                                               s["speed"], self.cfg.pix_fmt, s["profile"], bf,
                                               global_header, s["wpp"])
        return self._encoded[key]

    def _container(self, video, s: dict) -> bytes:
        """The mp4 file the authors' ffmpeg command writes for these settings."""
        key = ("mp4",) + self._key(video, s, True)
        if key not in self._encoded:
            _, h, w = video.shape
            self._encoded[key] = codecs.mux_mp4(self._encode(video, s, global_header=True),
                                                self.cfg.codec, h, w)
        return self._encoded[key]

    def _payload(self, video, s: dict) -> tuple[codecs.Bitstream, bytes, dict]:
        """(bitstream, bytes to send, sizes): the packets, then with ``charge:
        container`` the container's overhead bytes."""
        bs = self._encode(video, s)
        sizes = dict(stream_bits=bs.num_bits)
        if self.cfg.charge == "stream":
            return bs, bs.data, sizes
        mp4 = self._container(video, s)
        sizes["container_bits"] = 8 * len(mp4)
        extra = max(0, len(mp4) - len(bs.data))
        return bs, bs.data + container_overhead(mp4, extra), sizes

    # -- channel coding -----------------------------------------------------
    def _pipe(self, rate, modulation, max_block=None) -> DigitalPipe:
        max_block = max_block or self.cfg.max_block or LDPC_MAX_K
        key = (rate, modulation, max_block)
        if key not in self._pipes:
            self._pipes[key] = DigitalPipe(
                modulation, "ldpc5g", rate, max_block, decoding=self.cfg.decoding(),
                precision=self.ctx.precision, device=self.ctx.device)
        return self._pipes[key]

    def fill_rate(self, num_bits: int, budget: int, modulation: str,
                  max_block: int) -> tuple[float, int]:
        """(code rate, block cap) of the lowest-rate code (>= 1/5) whose codewords for a
        ``num_bits`` payload fit ``budget`` channel uses: every block gets
        ``floor(budget / C)`` symbols (capped at rate 1/5). Below rate 1/3 blocks
        must stay on base graph 2, which can shrink the cap and add blocks."""
        m = bits_per_symbol(modulation)
        cap = max_block
        while True:
            c, kp = self._pipe(0.5, modulation, cap).segmentation(num_bits)
            k = kp + self._pipe(0.5, modulation, cap).crc_len
            n = min(budget // c * m, int(k / LDPC_MIN_RATE) // m * m)
            rate = k / n if n else 1.0
            if rate > LDPC_MAX_RATE:
                raise BudgetError(f"{budget} channel uses cannot carry {num_bits} bits in "
                                  f"{c} blocks of {modulation} (rate {rate:.3g} > {LDPC_MAX_RATE})")
            new_cap = min(max_block, max_block_for_rate(rate))
            if new_cap >= cap:
                return rate, cap
            cap = new_cap

    def _budget_error(self, video, s: dict, what: str, fix: str) -> BudgetError:
        return BudgetError(f"target_cbr {self.cfg.target_cbr:.3g} on {video.name!r} at "
                           f"{MOD_NAMES[s['modulation']]} rate <= {_fraction(s['rate'])}: "
                           f"{what}; {fix}")

    def choose_qp(self, video, s: dict, budget: int) -> int:
        """Smallest QP whose payload fits ``budget`` channel uses at the configured
        (highest) rate (bisection; the payload shrinks as QP grows)."""
        f, h, w = video.shape
        pipe = self._pipe(s["rate"], s["modulation"], s["max_block"])
        uses = lambda qp: pipe.channel_uses(8 * len(self._payload(video, dict(s, qp=qp))[1]))  # noqa: E731
        if uses(51) > budget:
            need = cbr(uses(51), f, h, w)
            raise self._budget_error(video, s, f"even QP 51 needs CBR {need:.3g}",
                                     f"a target_cbr >= {need:.3g}, a higher rate or a larger "
                                     "modulation would fit")
        lo, hi = 0, 51
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if uses(mid) <= budget else (mid + 1, hi)
        return lo

    def budget_pipe(self, video, s: dict, num_bits: int, budget: int) -> DigitalPipe:
        """The pipe that spends [0.97, 1] x ``budget`` on ``num_bits`` (lowest rate)."""
        rate, cap = self.fill_rate(num_bits, budget, s["modulation"], s["max_block"])
        pipe = self._pipe(rate, s["modulation"], cap)
        spent = pipe.channel_uses(num_bits)
        if spent > budget:
            raise RuntimeError(f"rate matching overshot the budget: {spent} > {budget}")
        if spent < BUDGET_FLOOR * budget:
            f, h, w = video.shape
            most = cbr(spent, f, h, w)
            raise self._budget_error(
                video, s, f"even QP {s['qp']} at rate 1/5 spends only CBR {most:.3g} "
                f"({spent / budget:.3f} x)", f"a target_cbr <= {most:.3g} would fit")
        return pipe

    # -- a trial ------------------------------------------------------------
    def transmit(self, video, channel, snr_db, generator):
        s = self.cfg.settings(snr_db)
        budget = self.target_uses(video)
        if budget is not None:
            s["qp"] = self.choose_qp(video, s, budget)
        bs, data, sizes = self._payload(video, s)
        bits = bytes_to_bits(data)
        pipe = (self.budget_pipe(video, s, bits.numel(), budget) if budget is not None
                else self._pipe(s["rate"], s["modulation"], s["max_block"]))
        res = pipe(bits, channel, snr_db_to_no(snr_db), generator)
        num_bits = bits.numel()
        del bits
        f, h, w = video.shape
        stream = bits_to_bytes(res.bits[:bs.num_bits])
        dec = codecs.decode_stream(stream, bs.lengths, self.cfg.codec, h, w,
                                   self.cfg.decode_timeout_s, pts=bs.pts)
        c, kp = pipe.segmentation(num_bits)
        k = kp + pipe.crc_len
        n = ldpc_codeword_length(k, pipe.rate, pipe.m)
        crc_passed = bool(res.crc_ok.all())
        tx = Transmission(None, 0, extra=dict(
            s, bits_per_symbol=pipe.m, charge=self.cfg.charge, code_rate=k / n, code_blocks=c,
            block_k=k, block_n=n, frames_concealed=None, decoder_status=None,
            crc_failed_blocks=int((~res.crc_ok).sum()), reordered=bs.reordered, **sizes))
        tx.add_digital(res, num_bits, "bitstream" if self.cfg.charge == "stream" else "mp4 file")
        del res
        tx.frames = FrameStream(self._receive(dec, tx, crc_passed), f, h, w)
        return tx

    def _receive(self, dec, tx, crc_passed: bool):
        """The decoder's frames as they come; then what it found (concealed frames,
        status, and a decoder failure on a bitstream whose CRCs all passed)."""
        yield from dec
        tx.extra.update(frames_concealed=dec.concealed, decoder_status=dec.status)
        if crc_passed and (dec.status != "ok" or dec.concealed):
            tx.fail("decoder", f"{self.cfg.codec} decoder {dec.status}, {dec.concealed} of "
                    f"{dec.count} frames concealed on a bitstream whose CRCs all passed")
