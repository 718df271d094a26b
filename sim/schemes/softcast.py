"""``softcast``: analog linear video (Jakubczak & Katabi, SoftCast).

Transmitter: RGB -> YCbCr; per GOP and colour plane a 3-D DCT (orthonormal);
every temporal-frequency slice is cut into ``chunks[0] x chunks[1]``
rectangles (the chunks). Chunks are ranked by energy per coefficient
(lambda = mean square) and the largest ones are kept until the channel uses
fit ``target_cbr`` (ranked over the whole clip, not per GOP). Each kept chunk
is scaled by ``lambda^(-1/4)`` (the MSE-optimal power allocation for linear
coding) and its coefficients go through the analog pipe.
Metadata (chunk count, chunk indices and 16-bit log2 lambdas, step 1/128)
goes through the
digital pipe and is charged in the CBR. Receiver: LLSE per coefficient,
``x = g lambda / (g^2 lambda + sigma^2) y``, with sigma^2 the analog pipe's
per-value noise variance (perfect CSI); dropped chunks are zero; inverse DCT.
Corrupted metadata is used as received (bad indices or lambdas drop chunks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import Field

from ...link.analog import AnalogPipe
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalPipe
from . import SCHEMES, SchemeConfig
from .fields import Modulation, Rate
from .transmission import Transmission, VideoScheme

# BT.601 full-range RGB <-> YCbCr (offsets dropped: the DC coefficient carries them)
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]])
_YCC2RGB = np.linalg.inv(_RGB2YCC)
HEADER_BITS = 32
LAMBDA_STEP = 128  # log2(lambda) quantised to 1/128: 16 bits, 0.5 % resolution


def quantize_lambda(lam: np.ndarray) -> np.ndarray:
    """lambda > 0 -> int16 code of round(128 log2 lambda)."""
    return np.clip(np.rint(np.log2(lam) * LAMBDA_STEP), -32768, 32767).astype(np.int16)


def dequantize_lambda(code: np.ndarray) -> np.ndarray:
    return np.exp2(code.astype(np.float64) / LAMBDA_STEP)


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

    def _meta_bits(self, k: int, idx_bits: int) -> int:
        return HEADER_BITS + k * (idx_bits + 16)

    def plan(self, video):
        """Chunks to send (indices, float16 lambdas) and the channel-use budget split."""
        key = (video.name, id(video.frames))
        if key in self._plans:
            return self._plans[key]
        lay = self._layout(video)
        cubes = _dct_cubes(video.frames, self.cfg.gop)
        info = [(i, g, c, t, rs, cs) for i, g, c, t, rs, cs in lay.chunks()]
        lam = np.array([np.mean(cubes[g][t, rs, cs, c] ** 2) for _, g, c, t, rs, cs in info])
        size = np.array([(rs.stop - rs.start) * (cs.stop - cs.start) for *_, rs, cs in info])
        idx_bits = max(1, math.ceil(math.log2(len(info))))
        f, h, w = video.shape
        budget = int(self.cfg.target_cbr * 3 * h * w * f)
        order = np.argsort(-lam, kind="stable")
        keep, values = [], 0
        for i in order:
            if lam[i] <= 0:
                break
            uses = (self.analog.symbols_for(values + size[i])
                    + self.meta_pipe.channel_uses(self._meta_bits(len(keep) + 1, idx_bits)))
            if uses > budget:
                break
            keep.append(int(i))
            values += int(size[i])
        keep.sort()
        plan = (lay, cubes, info, keep, quantize_lambda(lam[keep]), idx_bits)
        self._plans[key] = plan
        return plan

    def _encode_meta(self, keep, codes, idx_bits) -> torch.Tensor:
        bits = [np.array([int(b) for b in format(len(keep), f"0{HEADER_BITS}b")], np.uint8)]
        for i, q in zip(keep, codes):
            bits.append(np.array([int(b) for b in format(i, f"0{idx_bits}b")], np.uint8))
            bits.append(np.unpackbits(np.array([q], ">i2").view(np.uint8)))
        return torch.from_numpy(np.concatenate(bits))

    def _decode_meta(self, bits: np.ndarray, idx_bits: int, n_chunks: int, k_sent: int):
        """Parse received metadata; garbage fields are dropped, never raise."""
        k = int("".join(map(str, bits[:HEADER_BITS])), 2)
        k = min(k, k_sent)  # the receiver can only read what the frame holds
        out, pos = [], HEADER_BITS
        for _ in range(k):
            i = int("".join(map(str, bits[pos:pos + idx_bits])), 2)
            code = np.packbits(bits[pos + idx_bits:pos + idx_bits + 16]).view(">i2")
            lam = float(dequantize_lambda(code)[0])
            pos += idx_bits + 16
            out.append((i, lam if i < n_chunks else 0.0))
        return out

    def transmit(self, video, channel, snr_db, generator):
        lay, cubes, info, keep, codes, idx_bits = self.plan(video)
        gains = dequantize_lambda(codes) ** -0.25
        x = np.concatenate([cubes[info[i][1]][info[i][3], info[i][4], info[i][5], info[i][2]]
                            .ravel() * g for i, g in zip(keep, gains)]) if keep else np.zeros(0)
        no = snr_db_to_no(snr_db)
        res_a = self.analog(torch.from_numpy(x).float(), channel, no, generator)
        meta = self._encode_meta(keep, codes, idx_bits)
        res_d = self.meta_pipe(meta, channel, no, generator)
        y, var = res_a.x_hat.double().numpy(), res_a.noise_var.double().numpy()
        rx = [np.zeros_like(c) for c in cubes]
        pos = 0
        for i, lam_i in self._decode_meta(res_d.bits.numpy(), idx_bits, len(info), len(keep)):
            _, g, c, t, rs, cs = info[i] if i < len(info) else (0, 0, 0, 0, slice(0, 0), slice(0, 0))
            n = (rs.stop - rs.start) * (cs.stop - cs.start)
            seg, sv = y[pos:pos + n], var[pos:pos + n]
            pos += n
            if lam_i <= 0 or seg.size != n:
                continue
            gi = lam_i ** -0.25
            rx[g][t, rs, cs, c] = (gi * lam_i / (gi * gi * lam_i + sv) * seg).reshape(
                rs.stop - rs.start, cs.stop - cs.start)
        tx = Transmission(_frames(rx), res_a.channel_uses, extra=dict(
            chunks_sent=len(keep), chunks_total=len(info), analog_uses=res_a.channel_uses,
            meta_bits=int(meta.numel()), meta_crc_failed=int((~res_d.crc_ok).sum())))
        tx.add_digital(res_d, int(meta.numel()))
        return tx
