"""NTSCC side information: the bits sent through the digital pipe.

Per image, in order (all fields MSB first):

1. the length index of every token, ``index_bits(R) = max(1, ceil(log2 R))``
   bits each for R rate choices, tokens in row-major order of y;
2. only with ``arch.use_side_info``: the z bit string of CompressAI's
   ``EntropyBottleneck.compress`` as a 32-bit byte count then its bytes.

The receiver knows the image size, hence the token count. Parsing never
raises on corrupted bits: indexes are clamped to [0, R), a byte count past
the end of the payload is cut to what is there.
"""

from __future__ import annotations

import math

import torch

Z_LENGTH_BITS = 32


def index_bits(num_rates: int) -> int:
    """Bits per token length index."""
    return max(1, math.ceil(math.log2(num_rates)))


def ints_to_bits(values: torch.Tensor, width: int) -> torch.Tensor:
    """[N] non-negative ints -> uint8 [N * width] bits, MSB first."""
    shifts = torch.arange(width - 1, -1, -1, dtype=torch.long)
    return ((values.reshape(-1, 1).long().cpu() >> shifts) & 1).to(torch.uint8).reshape(-1)


def bits_to_ints(bits: torch.Tensor, width: int) -> torch.Tensor:
    """uint8 [N * width] bits, MSB first -> [N] long."""
    weights = 2 ** torch.arange(width - 1, -1, -1, dtype=torch.long)
    return (bits.reshape(-1, width).long() * weights).sum(1)


def bytes_to_bits(data: bytes) -> torch.Tensor:
    return ints_to_bits(torch.tensor(list(data), dtype=torch.long), 8)


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    return bytes(bits_to_ints(bits, 8).tolist())


def pack_image(idx: torch.Tensor, num_rates: int, z_string: bytes | None) -> torch.Tensor:
    """One image's side bits: uint8 [L * index_bits (+ 32 + 8 * len(z_string))]."""
    parts = [ints_to_bits(idx, index_bits(num_rates))]
    if z_string is not None:
        parts += [ints_to_bits(torch.tensor([len(z_string)]), Z_LENGTH_BITS),
                  bytes_to_bits(z_string)]
    return torch.cat(parts)


def unpack_image(bits: torch.Tensor, pos: int, tokens: int, num_rates: int,
                 with_z: bool) -> tuple[torch.Tensor, bytes | None, int]:
    """Parse one image starting at bit ``pos``: (idx [tokens], z string or None, next pos)."""
    width = index_bits(num_rates)
    field = _take(bits, pos, tokens * width)
    idx = bits_to_ints(field, width).clamp(0, num_rates - 1)
    pos += tokens * width
    if not with_z:
        return idx, None, pos
    nbytes = int(bits_to_ints(_take(bits, pos, Z_LENGTH_BITS), Z_LENGTH_BITS))
    pos += Z_LENGTH_BITS
    nbytes = min(nbytes, max(0, (bits.numel() - pos) // 8))
    data = bits_to_bytes(_take(bits, pos, 8 * nbytes))
    return idx, data, pos + 8 * nbytes


def _take(bits: torch.Tensor, pos: int, n: int) -> torch.Tensor:
    """``n`` bits from ``pos``, zero-filled past the end."""
    out = torch.zeros(n, dtype=torch.uint8)
    got = bits.reshape(-1)[pos:pos + n].to(torch.uint8)
    out[:got.numel()] = got
    return out
