"""``softcast``: analog linear video (Jakubczak & Katabi, SoftCast).

Transmitter: RGB -> YCbCr; per GOP and colour plane a 3-D DCT (orthonormal);
every temporal-frequency slice is cut into ``chunks[0] x chunks[1]``
rectangles (the chunks). Chunks are ranked by energy per coefficient
(lambda = mean square) and the largest ones are kept until the channel uses
fit ``target_cbr`` (ranked over the whole clip, not per GOP). Each kept chunk
is scaled by ``lambda^(-1/4)`` (the MSE-optimal power allocation for linear
coding) and its coefficients go through the analog pipe.
Metadata (chunk count, chunk indices and 16-bit log2 lambdas, step 1/128;
:mod:`lgvsc.semantic.linear_coding`) goes through the
digital pipe and is charged in the CBR. Receiver: LLSE per coefficient,
``x = g lambda / (g^2 lambda + sigma^2) y``, with sigma^2 the analog pipe's
per-value noise variance (perfect CSI); dropped chunks are zero; inverse DCT.
Corrupted metadata is used as received (bad indices or lambdas drop chunks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import Field

from ...link.analog import AnalogPipe
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalPipe
from ...semantic import linear_coding as lin
from . import SCHEMES, SchemeConfig
from .fields import Modulation, Rate
from .transmission import Transmission, VideoScheme

# BT.601 full-range RGB <-> YCbCr (offsets dropped: the DC coefficient carries them)
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


class SoftCastConfig(SchemeConfig):
    target_cbr: float = Field(gt=0, description="channel uses / (3 H W F), metadata included")
    gop: int = Field(32, gt=0, description="frames per 3-D DCT")
    chunks: tuple[int, int] = Field((16, 16), description="chunk grid per DCT slice (rows, cols)")
    meta_rate: Rate = Field(0.2, description="LDPC rate of the metadata (robust)")
    meta_modulation: Modulation = "qpsk"


@dataclass
class _Layout:
    """Chunk geometry of one clip: slices per chunk index."""

    shape: tuple[int, int, int]  # F, H, W
    gop: int
    rows: np.ndarray
    cols: np.ndarray

    @property
    def gops(self) -> list[tuple[int, int]]:
        f = self.shape[0]
        return [(s, min(s + self.gop, f)) for s in range(0, f, self.gop)]

    def chunks(self):
        """Yield (index, gop, plane, t, row slice, col slice) in a fixed order."""
        i = 0
        for g, (s, e) in enumerate(self.gops):
            for c in range(3):
                for t in range(e - s):
                    for r in range(len(self.rows) - 1):
                        for q in range(len(self.cols) - 1):
                            yield i, g, c, t, slice(self.rows[r], self.rows[r + 1]), \
                                slice(self.cols[q], self.cols[q + 1])
                            i += 1


def _dct_cubes(frames: np.ndarray, gop: int) -> list[np.ndarray]:
    from scipy.fft import dctn

    ycc = frames.astype(np.float64) @ _RGB2YCC.T
    return [dctn(ycc[s:s + gop], axes=(0, 1, 2), norm="ortho") for s in range(0, len(frames), gop)]


def _frames(cubes: list[np.ndarray]) -> np.ndarray:
    from scipy.fft import idctn

    ycc = np.concatenate([idctn(c, axes=(0, 1, 2), norm="ortho") for c in cubes])
    return np.clip(np.rint(ycc @ _YCC2RGB.T), 0, 255).astype(np.uint8)


@SCHEMES.register("softcast")
class SoftCast(VideoScheme):
    Config = SoftCastConfig

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.analog = AnalogPipe("zf")
        self.meta_pipe = DigitalPipe(cfg.meta_modulation, "ldpc5g", cfg.meta_rate,
                                     precision=ctx.precision, device=ctx.device)
        self._plans: dict = {}

    def _layout(self, video) -> _Layout:
        f, h, w = video.shape
        ny, nx = self.cfg.chunks
        return _Layout((f, h, w), self.cfg.gop, np.linspace(0, h, min(ny, h) + 1).astype(int),
                       np.linspace(0, w, min(nx, w) + 1).astype(int))

    def plan(self, video):
        """(layout, DCT cubes, chunk table, kept chunk indices, their lambda codes), cached."""
        key = (video.name, id(video.frames))
        if key not in self._plans:
            lay = self._layout(video)
            cubes = _dct_cubes(video.frames, self.cfg.gop)
            info = list(lay.chunks())
            lam = np.array([np.mean(cubes[g][t, rs, cs, c] ** 2) for _, g, c, t, rs, cs in info])
            size = np.array([(rs.stop - rs.start) * (cs.stop - cs.start) for *_, rs, cs in info])
            f, h, w = video.shape
            keep = lin.select_chunks(lam, size, int(self.cfg.target_cbr * 3 * h * w * f),
                                     self.analog, self.meta_pipe)
            self._plans[key] = (lay, cubes, info, keep, lin.quantize_lambda(lam[keep]))
        return self._plans[key]

    def transmit(self, video, channel, snr_db, generator):
        lay, cubes, info, keep, codes = self.plan(video)
        g = lin.gains(lin.dequantize_lambda(codes))
        x = np.concatenate([cubes[info[i][1]][info[i][3], info[i][4], info[i][5], info[i][2]]
                            .ravel() * gi for i, gi in zip(keep, g)]) if keep else np.zeros(0)
        no = snr_db_to_no(snr_db)
        res_a = self.analog(torch.from_numpy(x).float(), channel, no, generator)
        meta = lin.encode_meta(keep, codes, len(info))
        res_d = self.meta_pipe(meta, channel, no, generator)
        y, var = res_a.x_hat.double().numpy(), res_a.noise_var.double().numpy()
        rx = [np.zeros_like(c) for c in cubes]
        entries, _ = lin.decode_meta(res_d.bits.numpy(), len(info), max_kept=len(keep))
        pos = 0
        for i, lam_i in entries:
            _, gop, c, t, rs, cs = info[i] if i < len(info) else (0, 0, 0, 0, slice(0, 0), slice(0, 0))
            shape = (rs.stop - rs.start, cs.stop - cs.start)
            n = shape[0] * shape[1]
            seg, sv = y[pos:pos + n], var[pos:pos + n]
            pos += n
            if lam_i > 0 and seg.size == n:
                rx[gop][t, rs, cs, c] = lin.llse(seg, sv, lam_i).reshape(shape)
        tx = Transmission(_frames(rx), res_a.channel_uses, extra=dict(
            chunks_sent=len(keep), chunks_total=len(info), analog_uses=res_a.channel_uses,
            meta_bits=int(meta.numel()), meta_crc_failed=int((~res_d.crc_ok).sum())))
        tx.add_digital(res_d, int(meta.numel()), "metadata")
        return tx
