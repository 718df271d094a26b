"""``softcast``: analog linear video (Jakubczak & Katabi, SoftCast).

Transmitter: RGB -> YCbCr; per GOP and colour plane a 3-D DCT (orthonormal),
one *coefficient set* [T, H, W] each. The set's mean (its DC coefficient)
goes as digital metadata; every temporal-frequency slice of the zero-mean
rest is cut into a grid of chunks; per slice a staircase of chunks is kept,
grown over the whole clip by energy per coefficient (lambda), until the
channel uses fit ``target_cbr`` exactly (the last chunk may be partial). Each
kept chunk is scaled by ``lambda^(-1/4)`` (the MSE-optimal power allocation
of linear coding) and its coefficients go through the analog pipe. The chunk
grid is picked per clip from the ``chunks`` candidates (default 8x8, 16x16,
32x32, 64x64 per slice) by the expected RGB distortion at ``design_snr_db``
(default 5 dB, the middle of the 0-10 dB the baselines are compared over; the
transmitter of a broadcast does not know the receiver's SNR). Metadata (grid, means, staircases,
log2-lambdas, Exp-Golomb coded; format in :mod:`lgvsc.semantic.linear_coding`)
goes through the digital pipe and is charged in the CBR, like the analog
pipe's power-scale side info: a trial spends [0.97, 1] x ``target_cbr x 3HWF``
or the scheme raises :class:`~lgvsc.link.cbr.BudgetError`.

Receiver: LLSE per coefficient, ``x = g lambda / (g^2 lambda + sigma^2) y``,
with sigma^2 the analog pipe's per-value noise variance (perfect CSI);
dropped chunks are zero; the means are added back; inverse DCT. A budget
below the metadata header's cost sends no metadata: the lowest-frequency
coefficients, means included, at unit gain (see the linear-coding module);
only one below the power scale plus one analog symbol is refused. Corrupted
metadata is used as received (it degrades, never raises; the CRC failure
marks the trial failed).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field, field_validator
from scipy.fft import dctn, idctn

from ...link.analog import AnalogPipe
from ...link.cbr import BUDGET_FLOOR, BudgetError, channel_uses_for_cbr
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalPipe
from ...semantic import linear_coding as lin
from . import SCHEMES, DecodingConfig
from .fields import Modulation, Rate
from .transmission import Transmission, VideoScheme


class SoftCastConfig(DecodingConfig):
    target_cbr: float = Field(gt=0, description="channel uses / (3 H W F), metadata included")
    gop: int = Field(32, gt=0, description="frames per 3-D DCT")
    chunks: list[tuple[int, int]] = Field(
        default_factory=lambda: list(lin.DEFAULT_GRIDS),
        description="chunk grid per DCT slice [rows, cols], or up to 4 candidates picked per clip")
    design_snr_db: float = Field(5.0, ge=-20, le=60,
                                 description="Es/N0 (dB) at which the chunk grid is picked")
    meta_rate: Rate = Field(0.2, description="LDPC rate of the metadata (robust)")
    meta_modulation: Modulation = "qpsk"

    @field_validator("chunks", mode="before")
    @classmethod
    def _grids(cls, v):
        return lin.grid_list(v)


def to_sets(frames: np.ndarray, gop: int) -> list[np.ndarray]:
    """uint8 [F, H, W, 3] -> 3-D DCT coefficient sets [T, H, W] float64, (GOP, plane) order."""
    ycc = lin.to_ycc(frames)
    return [dctn(ycc[s:s + gop, ..., c], norm="ortho")
            for s in range(0, len(frames), gop) for c in range(3)]


def from_sets(sets: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`to_sets` -> uint8 [F, H, W, 3]."""
    cubes = [np.stack([idctn(sets[g + c], norm="ortho") for c in range(3)], axis=-1)
             for g in range(0, len(sets), 3)]
    return lin.to_rgb(np.concatenate(cubes))


def cbr_at_least(uses: int, total: int) -> float:
    """Smallest 3-significant-digit CBR x with ``int(x total) >= uses``."""
    x = uses / total
    step = 10.0 ** (math.floor(math.log10(x)) - 2)
    x = math.ceil(x / step - 1e-9) * step
    while int(x * total) < uses:
        x += step
    return x


def cbr_at_most(uses: int, total: int) -> float:
    """Largest 3-significant-digit CBR x with ``BUDGET_FLOOR int(x total) <= uses``."""
    x = uses / BUDGET_FLOOR / total
    step = 10.0 ** (math.floor(math.log10(x)) - 2)
    x = math.floor(x / step + 1e-9) * step
    while x > step and BUDGET_FLOOR * int(x * total) > uses:
        x -= step
    return x


@SCHEMES.register("softcast")
class SoftCast(VideoScheme):
    Config = SoftCastConfig

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.analog = AnalogPipe("zf")
        self.meta_pipe = DigitalPipe(cfg.meta_modulation, "ldpc5g", cfg.meta_rate,
                                     decoding=cfg.decoding(), precision=ctx.precision,
                                     device=ctx.device)
        self.coder = lin.LinearCoder(cfg.chunks, self.analog, self.meta_pipe, cfg.design_snr_db)
        self._plans: dict = {}

    @classmethod
    def check_video(cls, cfg, video, where):
        """Refuses a budget below the power scale plus one analog symbol (nothing can be
        sent); warns below twice that: a handful of coefficients, or the metadata
        alone, carry the clip, and quality barely depends on the SNR."""
        f, h, w = video.frames, video.height, video.width
        budget = channel_uses_for_cbr(cfg.target_cbr, f, h, w)
        needed = AnalogPipe("zf").symbols_for(1)
        total = 3 * f * h * w
        if budget < needed:
            raise ValueError(f"{where}.target_cbr: {cfg.target_cbr:g} leaves {budget} channel "
                             f"uses on video {video.label!r} ({f}x{h}x{w}), but the power scale "
                             f"and one analog symbol alone need {needed} (target_cbr >= "
                             f"{cbr_at_least(needed, total):.3g} would)")
        if budget < 2 * needed:
            return [f"{cfg.name}: target_cbr {cfg.target_cbr:g} leaves {budget} channel uses on "
                    f"video {video.label!r}, {needed} of them the power scale: few coefficients "
                    "are sent and quality will barely depend on the SNR (target_cbr >= "
                    f"{cbr_at_least(2 * needed, total):.3g} sends at least as many as the "
                    "power scale costs)"]
        return []

    def plan(self, video) -> lin.Plan:
        """The transmitter's plan for a clip (deterministic, so cached per clip)."""
        key = (video.name, id(video.frames))
        if key not in self._plans:
            budget = self.target_uses(video)
            sets = to_sets(video.frames, self.cfg.gop)
            try:
                plan = self.coder.plan(sets, budget, np.tile(lin.RGB_WEIGHTS, len(sets) // 3))
            except lin.BudgetUnfit as e:
                raise BudgetError(self._budget_message(video, budget, e)) from None
            if not np.any(plan.values):
                raise BudgetError(f"softcast: target_cbr {self.cfg.target_cbr:g} on "
                                  f"{video.name!r} sends metadata only (no analog coefficient "
                                  "carries anything): the result would not depend on the SNR; "
                                  "raise target_cbr")
            self._plans[key] = plan
        return self._plans[key]

    def _budget_message(self, video, budget: int, e: lin.BudgetUnfit) -> str:
        f, h, w = video.shape
        total, t = 3 * f * h * w, self.cfg.target_cbr
        return e.explain(f"softcast: target_cbr {t:g} leaves {budget} channel uses for "
                         f"{video.name!r}", budget,
                         f"target_cbr >= {cbr_at_least(e.needed, total):.3g}",
                         f"target_cbr <= {cbr_at_most(e.usable, total):.3g}")

    def transmit(self, video, channel, snr_db, generator):
        p = self.plan(video)
        no = snr_db_to_no(snr_db)
        res_a = self.analog(torch.from_numpy(p.values).float(), channel, no, generator)
        res_d = self.meta_pipe(torch.from_numpy(p.bits), channel, no, generator)
        f, h, w = video.shape
        shapes = [(min(self.cfg.gop, f - s), h, w) for s in range(0, f, self.cfg.gop)
                  for _ in range(3)]
        sets = self.coder.decode(res_d.bits.numpy(), shapes, res_a.x_hat.double().numpy(),
                                 res_a.noise_var.double().numpy())
        tx = Transmission(from_sets(sets), res_a.channel_uses, extra=dict(
            chunks_sent=p.kept, chunk_grid=f"{p.grid[0]}x{p.grid[1]}" if p.grid else "none",
            partial_values=p.partial_values, analog_uses=res_a.channel_uses,
            meta_bits=int(p.bits.size), meta_uses=res_d.channel_uses,
            meta_crc_failed=int((~res_d.crc_ok).sum())))
        tx.add_digital(res_d, int(p.bits.size), "metadata")
        return tx
