"""Bytes <-> bit tensors (MSB first)."""

from __future__ import annotations

import numpy as np
import torch


def bytes_to_bits(data: bytes) -> torch.Tensor:
    """``bytes`` -> [8 * len(data)] uint8 bits, MSB first."""
    return torch.from_numpy(np.unpackbits(np.frombuffer(data, dtype=np.uint8)).copy())


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """[L] bits (L a multiple of 8) -> ``bytes``."""
    arr = torch.as_tensor(bits).to(torch.uint8).cpu().numpy()
    if arr.size % 8:
        raise ValueError(f"bit count must be a multiple of 8, got {arr.size}")
    return np.packbits(arr).tobytes()
