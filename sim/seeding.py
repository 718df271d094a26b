"""The one place that owns seeds, device and precision.

Every unit of work (scheme x SNR x video x trial) draws from its own
generator, seeded from a hash of (scenario seed, scheme name, SNR, video,
trial). Any unit therefore reruns bit-identically in any order, in any
process, on any executor. No global RNG is ever seeded or used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


def unit_seed(seed: int, scheme: str, snr_db: float, video: str = "", trial: int = 0) -> int:
    """63-bit seed derived from the unit's identity (stable across Python versions)."""
    key = f"{int(seed)}|{scheme}|{float(snr_db)!r}|{video}|{int(trial)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class RunContext:
    """Device and precision for one run; generators come from :meth:`generator`."""

    device: str = "cpu"
    precision: str = "single"  # Sionna's "single" | "double"

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def check(self) -> None:
        """Fail clearly when the device cannot be used on this machine."""
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: cuda requested but no CUDA device is available here")
