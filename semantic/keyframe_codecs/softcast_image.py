"""``softcast-image``: the embedded keyframe codec (no weights).

Per image: RGB -> YCbCr -> 2-D DCT of each plane (orthonormal) -> a grid of
``chunks`` per plane -> SoftCast linear coding (:mod:`~lgvsc.semantic.linear_coding`):
the highest-energy chunks that fit ``budget_uses`` (metadata included), power
allocation ``lambda^-1/4``, LLSE at the receiver. Degrades gracefully with
SNR (no cliff) and runs through the same analog pipe and channels as NTSCC.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dctn, idctn

from .. import linear_coding as lin
from . import KEYFRAME_CODECS, Encoded, KeyframeCodec

_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def _chunk_table(h: int, w: int, grid: tuple[int, int]):
    """[(plane, row slice, col slice)] in a fixed order."""
    rows = np.linspace(0, h, min(grid[0], h) + 1).astype(int)
    cols = np.linspace(0, w, min(grid[1], w) + 1).astype(int)
    return [(c, slice(rows[r], rows[r + 1]), slice(cols[q], cols[q + 1]))
            for c in range(3) for r in range(len(rows) - 1) for q in range(len(cols) - 1)]


@KEYFRAME_CODECS.register("softcast-image")
class SoftCastImage(KeyframeCodec):
    """:param chunks: chunk grid per colour plane (rows, cols)."""

    def __init__(self, chunks: tuple[int, int] = (16, 16), **pipes):
        super().__init__(**pipes)
        if len(chunks) != 2 or min(chunks) < 1:
            raise ValueError(f"chunks must be two positive integers, got {chunks}")
        self.grid = tuple(int(c) for c in chunks)

    def encode(self, images, budget_uses, snr_db=None):
        b, h, w, _ = images.shape
        table = _chunk_table(h, w, self.grid)
        size = np.array([(rs.stop - rs.start) * (cs.stop - cs.start) for _, rs, cs in table])
        symbols, metas, kept = [], [], []
        for img in images:
            coef = dctn(img.astype(np.float64) @ _RGB2YCC.T, axes=(0, 1), norm="ortho")
            lam = np.array([np.mean(coef[rs, cs, c] ** 2) for c, rs, cs in table])
            keep = lin.select_chunks(lam, size, budget_uses, self.analog, self.digital)
            codes = lin.quantize_lambda(lam[keep])
            g = lin.gains(lin.dequantize_lambda(codes))
            x = [coef[table[i][1], table[i][2], table[i][0]].ravel() * gi for i, gi in zip(keep, g)]
            symbols.append(torch.from_numpy(np.concatenate(x) if x else np.zeros(0)).float())
            metas.append(lin.encode_meta(keep, codes, len(table)))
            kept.append(len(keep))
        side = torch.cat(metas) if metas else torch.zeros(0, dtype=torch.uint8)
        return Encoded(symbols, side, dict(shape=(h, w), kept=kept))

    def decode(self, received, side_bits, state, snr_db=None):
        h, w = state["shape"]
        table = _chunk_table(h, w, self.grid)
        bits, pos, out = np.asarray(side_bits, dtype=np.uint8), 0, []
        for rx, k in zip(received, state["kept"]):
            entries, pos = lin.decode_meta(bits, len(table), pos, max_kept=k)
            y, var = rx.x_hat.double().numpy(), rx.noise_var.double().numpy()
            coef, at = np.zeros((h, w, 3)), 0
            for i, lam in entries:
                c, rs, cs = table[i] if i < len(table) else (0, slice(0, 0), slice(0, 0))
                shape = (rs.stop - rs.start, cs.stop - cs.start)
                n = shape[0] * shape[1]
                seg, sv = y[at:at + n], var[at:at + n]
                at += n
                if lam > 0 and seg.size == n:
                    coef[rs, cs, c] = lin.llse(seg, sv, lam).reshape(shape)
            ycc = idctn(coef, axes=(0, 1), norm="ortho")
            out.append(np.clip(np.rint(ycc @ _YCC2RGB.T), 0, 255).astype(np.uint8))
        return np.stack(out)
