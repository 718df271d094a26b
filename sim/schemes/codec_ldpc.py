"""``codec-ldpc``: H.264 / H.265 over 5G LDPC + QAM (the paper's digital baseline).

What is protected and how errors propagate: the encoder's bitstream is ONE
payload for the digital pipe, cut into equal code blocks with a CRC each.
Blocks that fail are not retransmitted or dropped: their decoded bits, errors
and all, go to the video decoder, which conceals what it cannot decode
(repeating the last good frame). Above the LDPC waterfall every block
decodes and quality is the codec's; a little below it, most blocks carry
errors, the bitstream falls apart, and quality collapses: the cliff.
The packet lengths are assumed known at the receiver (container/RTP framing)
and are not charged.

Per-SNR settings: ``preset: paper-table1`` (the paper's Table I), or a
``table:`` of rows; SNRs between or outside rows use the nearest row. Top-
level ``qp``/``gop``/``rate``/``modulation`` override the table. With
``target_cbr`` the QP is the smallest (best quality) whose CBR fits.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...link.bits import bits_to_bytes, bytes_to_bits
from ...link.cbr import cbr
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalPipe
from ...link.modem import bits_per_symbol
from .. import codecs
from . import SCHEMES, SchemeConfig
from .fields import Modulation, Rate, parse_rate
from .transmission import Transmission, VideoScheme


class TableRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    snr_db: float
    qp: int | None = Field(None, ge=0, le=51)
    gop: int | None = Field(None, gt=0)
    rate: Rate | None = None
    modulation: Modulation | None = None


@lru_cache(maxsize=None)
def paper_table1(codec: str) -> tuple[TableRow, ...]:
    """The paper's Table I rows for ``codec`` (h264 | h265)."""
    text = resources.files("lgvsc.sim").joinpath("data/table1_h26x_ldpc.csv").read_text()
    return tuple(TableRow(snr_db=float(r["snr_db"]), qp=int(r["qp"]), gop=int(r["gop"]),
                          rate=parse_rate(r["ldpc_rate"]), modulation=r["modulation"])
                 for r in csv.DictReader(text.splitlines()) if r["codec"] == codec)


class CodecLDPCConfig(SchemeConfig):
    codec: Literal["h264", "h265"]
    preset: Literal["paper-table1"] | None = Field(None, description="per-SNR settings preset")
    table: list[TableRow] | None = Field(None, description="per-SNR settings rows")
    qp: int | None = Field(None, ge=0, le=51)
    gop: int | None = Field(None, gt=0, description="keyframe interval (keyint)")
    rate: Rate | None = Field(None, description="LDPC code rate")
    modulation: Modulation | None = None
    target_cbr: float | None = Field(None, gt=0, description="pick the QP that meets this CBR")
    speed: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                   "slower", "veryslow"] = "medium"
    pix_fmt: Literal["yuv420p", "yuv444p"] = "yuv420p"
    max_block: int = Field(8448, ge=64, le=8448, description="largest LDPC code block (bits)")
    iterations: int = Field(20, gt=0)
    decode_timeout_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_source(self):
        if self.preset and self.table:
            raise ValueError("give either preset or table, not both")
        if self.target_cbr is not None and self.qp is not None:
            raise ValueError("give either qp or target_cbr, not both")
        return self

    def rows(self) -> tuple[TableRow, ...]:
        if self.preset == "paper-table1":
            return paper_table1(self.codec)
        return tuple(self.table or ())

    def settings(self, snr_db: float) -> dict:
        """QP, GOP, rate and modulation in force at ``snr_db``."""
        rows = self.rows()
        row = min(rows, key=lambda r: (abs(r.snr_db - snr_db), -r.snr_db)) if rows else None
        pick = lambda k, default: (getattr(self, k) if getattr(self, k) is not None else  # noqa: E731
                                   getattr(row, k) if row is not None and getattr(row, k) is not None
                                   else default)
        return dict(qp=pick("qp", 37), gop=pick("gop", 12), rate=pick("rate", 0.5),
                    modulation=pick("modulation", "qpsk"))


@SCHEMES.register("codec-ldpc")
class CodecLDPC(VideoScheme):
    Config = CodecLDPCConfig

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self._encoded: dict = {}
        self._pipes: dict = {}

    def _encode(self, video, qp, gop) -> codecs.Bitstream:
        key = (video.name, id(video.frames), qp, gop)
        if key not in self._encoded:
            self._encoded[key] = codecs.encode(video.frames, self.cfg.codec, qp, gop,
                                               self.cfg.speed, self.cfg.pix_fmt)
        return self._encoded[key]

    def _pipe(self, rate, modulation) -> DigitalPipe:
        if (rate, modulation) not in self._pipes:
            self._pipes[(rate, modulation)] = DigitalPipe(
                modulation, "ldpc5g", rate, self.cfg.max_block, iterations=self.cfg.iterations,
                precision=self.ctx.precision, device=self.ctx.device)
        return self._pipes[(rate, modulation)]

    def choose_qp(self, video, gop, pipe) -> int:
        """Smallest QP whose CBR fits ``target_cbr`` (bisection; CBR falls with QP)."""
        f, h, w = video.shape
        fits = lambda qp: cbr(pipe.channel_uses(self._encode(video, qp, gop).num_bits),  # noqa: E731
                              f, h, w) <= self.cfg.target_cbr
        lo, hi = 0, 51
        if not fits(hi):
            return hi  # cannot meet the budget; the stored CBR shows by how much
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
        return lo

    def transmit(self, video, channel, snr_db, generator):
        s = self.cfg.settings(snr_db)
        pipe = self._pipe(s["rate"], s["modulation"])
        if self.cfg.target_cbr is not None:
            s["qp"] = self.choose_qp(video, s["gop"], pipe)
        bs = self._encode(video, s["qp"], s["gop"])
        bits = bytes_to_bits(bs.data)
        res = pipe(bits, channel, snr_db_to_no(snr_db), generator)
        f, h, w = video.shape
        dec = codecs.decode(bits_to_bytes(res.bits), bs.lengths, self.cfg.codec, h, w,
                            self.cfg.decode_timeout_s)
        tx = Transmission(dec.frames, 0, extra=dict(
            s, bits_per_symbol=bits_per_symbol(s["modulation"]), frames_concealed=dec.concealed,
            decoder_status=dec.status, crc_failed_blocks=int((~res.crc_ok).sum())))
        tx.add_digital(res, bits.numel(), "bitstream")
        return tx

