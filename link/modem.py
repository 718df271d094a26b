"""Gray-labelled QAM/BPSK mapping (Sionna's mapper) and exact or max-log soft demapping.

Bit order inside a symbol follows 38.211 / Sionna: for M-QAM, the even bit
positions label the in-phase PAM, the odd ones the quadrature PAM, most
significant first. Constellations have unit average energy (Es = 1).
"""

from __future__ import annotations

import numpy as np
import torch
from sionna.phy.mapping import Mapper

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
        self._demapper = AxisDemapper(self._mapper.constellation.points, self.m, demapping)

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        return self._mapper(bits)

    def demodulate(self, y: torch.Tensor, h: torch.Tensor, no: float) -> torch.Tensor:
        """Perfect-CSI demapping: equalise ``y / h``, effective noise ``no / |h|^2``."""
        if h.dim() == 0:  # AWGN: h = 1
            return self._demapper(y, torch.as_tensor(no, dtype=y.real.dtype))
        g = h.abs().square().clamp_min(1e-12)
        return self._demapper(y / h, no / g)


class AxisDemapper:
    """Exact (``app``) or max-log LLRs of a Gray QAM / PAM constellation, one real axis
    at a time.

    A square QAM is the product of two PAMs (the even label bits pick the real part,
    the odd ones the imaginary part; BPSK uses the real axis only) and circular noise
    factors over the axes, so each bit's LLR needs only its axis: sqrt(M) distances
    instead of M, which makes it several times cheaper than Sionna's demapper for the
    same values (float32 rounding aside). The axis tables are read off the
    constellation's points and labels, and checked to factor, at construction.

    :param points: [2^m] complex constellation points (label i = point i, MSB first).
    :input y: [..., S] complex received (equalised) symbols; :input no: noise variance,
        scalar or broadcastable to ``y``. :output: [..., S*m] LLRs log p(b=1)/p(b=0).
    """

    def __init__(self, points: torch.Tensor, m: int, method: str = "app"):
        if method not in ("app", "maxlog"):
            raise ValueError(f"method must be 'app' or 'maxlog', got {method!r}")
        pts = np.asarray(points.detach().cpu())
        labels = (np.arange(2 ** m)[:, None] >> (m - 1 - np.arange(m))) & 1
        axes = [(pts.real, list(range(0, m, 2)) if m > 1 else [0])]
        if m > 1:
            axes.append((pts.imag, list(range(1, m, 2))))
        self.m, self.method, self._tiny = m, method, float(np.finfo(np.float32).tiny)
        self._axes = []
        for coord, bits in axes:
            levels = np.unique(np.round(coord, 6))
            idx = np.abs(coord[:, None] - levels[None, :]).argmin(axis=1)
            table = np.zeros((len(levels), len(bits)), dtype=np.int64)
            for i, lv in enumerate(idx):
                if (table[lv] != 0).any() and not (table[lv] == labels[i, bits]).all():
                    raise ValueError("constellation does not factor into per-axis labels")
                table[lv] = labels[i, bits]
            one = [torch.as_tensor(np.where(table[:, b] == 1)[0]) for b in range(len(bits))]
            zero = [torch.as_tensor(np.where(table[:, b] == 0)[0]) for b in range(len(bits))]
            lv = torch.as_tensor(np.array([coord[idx == i].mean() for i in range(len(levels))]),
                                 dtype=torch.float32)
            self._axes.append((lv, bits, torch.stack(one, 1), torch.stack(zero, 1)))

    def __call__(self, y: torch.Tensor, no) -> torch.Tensor:
        no = torch.as_tensor(no, dtype=y.real.dtype, device=y.device).clamp_min(self._tiny)
        out = torch.empty(*y.shape, self.m, dtype=y.real.dtype, device=y.device)
        for (levels, bits, one, zero), part in zip(self._axes, (y.real, y.imag)):
            lv = levels.to(y.device, y.real.dtype)
            metric = -(part.unsqueeze(-1) - lv).square() / no.unsqueeze(-1)  # [..., S, L]
            m1, m0 = metric[..., one.to(y.device)], metric[..., zero.to(y.device)]  # [..., S, L/2, b]
            if self.method == "app":
                llr = torch.logsumexp(m1, dim=-2) - torch.logsumexp(m0, dim=-2)
            else:
                llr = m1.amax(dim=-2) - m0.amax(dim=-2)
            out[..., bits] = llr
        return out.reshape(*y.shape[:-1], y.shape[-1] * self.m)
