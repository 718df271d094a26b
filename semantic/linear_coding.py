"""SoftCast-style linear analog coding of transform coefficients.

Shared by the ``softcast`` video baseline and the ``softcast-image`` keyframe
codec. The caller transforms its signal (a 3-D or 2-D DCT) and cuts the
coefficients into *chunks*; this module

* ranks chunks by energy per coefficient ``lambda`` (mean square) and keeps
  the largest ones while the channel uses (analog symbols, the analog pipe's
  scale, and the metadata through the digital pipe) fit a budget;
* scales chunk ``i`` by ``g_i = lambda_i^(-1/4)``, the MSE-optimal power
  allocation of linear coding (the analog pipe normalises total power);
* writes the metadata: a 32-bit chunk count, then per kept chunk its index
  and ``round(128 log2 lambda)`` as 16 bits (0.5 % resolution);
* decodes it robustly (garbage indices or lambdas drop chunks, never raise);
* estimates each chunk by LLSE, ``x = g lambda / (g^2 lambda + sigma^2) y``,
  with ``sigma^2`` the analog pipe's per-value noise variance.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..link.analog import AnalogPipe
from ..link.digital import DigitalPipe

HEADER_BITS = 32
LAMBDA_BITS = 16
LAMBDA_STEP = 128


def quantize_lambda(lam: np.ndarray) -> np.ndarray:
    """lambda > 0 -> int16 code ``round(128 log2 lambda)``."""
    return np.clip(np.rint(np.log2(lam) * LAMBDA_STEP), -32768, 32767).astype(np.int16)


def dequantize_lambda(code: np.ndarray) -> np.ndarray:
    return np.exp2(np.asarray(code, dtype=np.float64) / LAMBDA_STEP)


def index_bits(num_chunks: int) -> int:
    return max(1, math.ceil(math.log2(max(num_chunks, 2))))


def meta_bits(kept: int, num_chunks: int) -> int:
    return HEADER_BITS + kept * (index_bits(num_chunks) + LAMBDA_BITS)


def select_chunks(lam: np.ndarray, sizes: np.ndarray, budget_uses: int, analog: AnalogPipe,
                  digital: DigitalPipe) -> list[int]:
    """Indices (ascending) of the highest-``lam`` chunks whose total cost fits ``budget_uses``."""
    keep, values = [], 0
    for i in np.argsort(-lam, kind="stable"):
        if lam[i] <= 0:
            break
        uses = (analog.symbols_for(values + int(sizes[i]))
                + digital.channel_uses(meta_bits(len(keep) + 1, len(lam))))
        if uses > budget_uses:
            break
        keep.append(int(i))
        values += int(sizes[i])
    return sorted(keep)


def _int_bits(value: int, width: int) -> np.ndarray:
    return np.array([(value >> (width - 1 - b)) & 1 for b in range(width)], np.uint8)


def _bits_int(bits: np.ndarray) -> int:
    out = 0
    for b in bits:
        out = (out << 1) | int(b)
    return out


def encode_meta(keep: list[int], codes: np.ndarray, num_chunks: int) -> torch.Tensor:
    """Metadata bits for the kept chunks and their lambda codes."""
    w = index_bits(num_chunks)
    parts = [_int_bits(len(keep), HEADER_BITS)]
    for i, q in zip(keep, codes):
        parts += [_int_bits(int(i), w), _int_bits(int(q) & 0xFFFF, LAMBDA_BITS)]
    return torch.from_numpy(np.concatenate(parts))


def decode_meta(bits: np.ndarray, num_chunks: int, pos: int = 0,
                max_kept: int | None = None) -> tuple[list[tuple[int, float]], int]:
    """Parse metadata at ``pos``: ([(chunk index, lambda)], next position).

    Corrupted fields never raise: the count is capped by ``max_kept`` and by
    what the bits can hold; an index out of range gets lambda 0 (dropped).
    """
    bits = np.asarray(bits, dtype=np.uint8)
    w = index_bits(num_chunks)
    entry = w + LAMBDA_BITS
    k = _bits_int(bits[pos:pos + HEADER_BITS]) if pos + HEADER_BITS <= len(bits) else 0
    pos += HEADER_BITS
    k = min(k, (len(bits) - pos) // entry if len(bits) > pos else 0,
            max_kept if max_kept is not None else k)
    out = []
    for _ in range(k):
        i = _bits_int(bits[pos:pos + w])
        q = _bits_int(bits[pos + w:pos + entry])
        q = q - 65536 if q >= 32768 else q
        out.append((i, float(dequantize_lambda(q)) if i < num_chunks else 0.0))
        pos += entry
    return out, pos


def gains(lam: np.ndarray) -> np.ndarray:
    """Power allocation ``lambda^(-1/4)`` (0 for lambda <= 0)."""
    lam = np.asarray(lam, dtype=np.float64)
    return np.where(lam > 0, np.maximum(lam, 1e-300) ** -0.25, 0.0)


def llse(y: np.ndarray, noise_var: np.ndarray, lam: float) -> np.ndarray:
    """LLSE estimate of a chunk sent as ``g x`` and received as ``y`` (ZF-equalised)."""
    g = float(gains(np.array([lam]))[0])
    return g * lam / (g * g * lam + noise_var) * y
