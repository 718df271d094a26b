"""Gray-labelled QAM/BPSK mapping and soft demapping (Sionna blocks).

Bit order inside a symbol follows 38.211 / Sionna: for M-QAM, the even bit
positions label the in-phase PAM, the odd ones the quadrature PAM, most
significant first. Constellations have unit average energy (Es = 1).
"""

from __future__ import annotations

import torch
from sionna.phy.mapping import Demapper, Mapper

#: modulation name -> (Sionna constellation type, bits per symbol)
MODULATIONS: dict[str, tuple[str, int]] = {
    "bpsk": ("pam", 1),
    "qpsk": ("qam", 2),
    "qam16": ("qam", 4),
    "qam64": ("qam", 6),
    "qam256": ("qam", 8),
}


def bits_per_symbol(modulation: str) -> int:
    """Bits per complex channel use of a named modulation."""
    try:
        return MODULATIONS[modulation][1]
    except KeyError:
        raise ValueError(
            f"modulation must be one of {', '.join(MODULATIONS)}, got {modulation!r}"
        ) from None


class Modem:
    """Maps bits to symbols and received symbols to bit LLRs.

    :param modulation: One of :data:`MODULATIONS`.
    :param demapping: ``"app"`` (exact) or ``"maxlog"``.

    :meth:`modulate` -- bits [..., n] float (n a multiple of ``m``) ->
    symbols [..., n/m] complex.
    :meth:`demodulate` -- received ``y`` [..., n/m], channel ``h`` and
    noise variance ``no`` -> LLRs [..., n], ``log p(b=1)/p(b=0)``.
    """

    def __init__(self, modulation: str, demapping: str = "app",
                 precision: str = "single", device: str = "cpu"):
        self.m = bits_per_symbol(modulation)
        if demapping not in ("app", "maxlog"):
            raise ValueError(f"demapping must be 'app' or 'maxlog', got {demapping!r}")
        ctype = MODULATIONS[modulation][0]
        self.modulation = modulation
        self._mapper = Mapper(ctype, self.m, precision=precision, device=device)
        self._demapper = Demapper(demapping, ctype, self.m, precision=precision, device=device)

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        return self._mapper(bits)

    def demodulate(self, y: torch.Tensor, h: torch.Tensor, no: float) -> torch.Tensor:
        """Perfect-CSI demapping: equalise ``y / h``, effective noise ``no / |h|^2``."""
        if h.dim() == 0:  # AWGN: h = 1
            return self._demapper(y, torch.as_tensor(no, dtype=y.real.dtype))
        g = h.abs().square().clamp_min(1e-12)
        return self._demapper(y / h, no / g)
