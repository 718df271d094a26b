"""Flat channels with perfect CSI: ``y = h * x + n``.

Units: ``snr_db`` is Es/N0 in dB per *complex* channel use, for a channel
input of unit average power (Es = 1). The complex noise variance is therefore
``no = 10 ** (-snr_db / 10)``, ``no / 2`` per real dimension. On fading
channels ``E[|h|^2] = 1``, so ``snr_db`` is the *average* received SNR.

Numerical range: ``snr_db`` in [:data:`SNR_DB_MIN`, :data:`SNR_DB_MAX`] =
[-100, 100] dB, i.e. ``no <= 1e10``. Received powers and the demappers'
``|y - s|^2 / no`` stay far inside float32 there; at about -380 dB they
overflow to inf and NaN LLRs would decode to an all-zero word, whose CRC
passes. :func:`snr_db_to_no` refuses an SNR outside the range and a channel
call refuses a non-finite ``no`` or one above :data:`NO_MAX` (``ValueError``).

Fixed settings (coherence length, K-factor) are validated in ``__init__``;
per-draw inputs (the noise variance and the random generator) go in the call.
Every channel returns ``(y, h)`` where ``h`` broadcasts against ``y``; the
receivers use ``h`` as perfect CSI.
"""

from __future__ import annotations

import math

import torch

from .registry import Registry

CHANNELS: Registry[type["Channel"]] = Registry("channel")


#: Es/N0 range (dB) the link layer computes in (see the module docstring)
SNR_DB_MIN, SNR_DB_MAX = -100.0, 100.0
#: largest complex noise variance a channel takes (Es = 1): SNR_DB_MIN
NO_MAX = 10.0 ** (-SNR_DB_MIN / 10.0)


def snr_db_to_no(snr_db: float) -> float:
    """Complex noise variance ``no`` for Es/N0 ``snr_db`` (dB) with Es = 1, in float64.

    :raises ValueError: ``snr_db`` is a bool, not finite or outside
        [``SNR_DB_MIN``, ``SNR_DB_MAX``] dB.
    """
    try:
        s = math.nan if isinstance(snr_db, (bool, str, bytes)) else float(snr_db)
    except (TypeError, ValueError):
        s = math.nan
    if not (math.isfinite(s) and SNR_DB_MIN <= s <= SNR_DB_MAX):
        raise ValueError(f"snr_db must be a finite Es/N0 in [{SNR_DB_MIN:g}, {SNR_DB_MAX:g}] dB, "
                         f"got {snr_db!r}")
    return 10.0 ** (-s / 10.0)


def check_no(no: float) -> float:
    """``no`` as a float if it is a usable complex noise variance: finite, in
    [0, ``NO_MAX``] (``snr_db >= SNR_DB_MIN``); else ``ValueError``."""
    v = float(no)
    if not (math.isfinite(v) and 0.0 <= v <= NO_MAX):
        raise ValueError(f"no must be a finite noise variance in [0, {NO_MAX:g}] "
                         f"(snr_db >= {SNR_DB_MIN:g} dB), got {no!r}")
    return v


def complex_normal(shape, generator: torch.Generator, dtype=torch.complex64,
                   device=None) -> torch.Tensor:
    """CN(0, 1) samples (variance 1/2 per real dimension) from ``generator``.

    The numbers are drawn on the generator's device and then moved to ``device``
    (default: the generator's): a CUDA generator (``device: cuda`` scenarios) cannot
    draw CPU numbers, nor a CPU generator CUDA ones, and this way a unit's noise is
    the same whatever device its tensors live on.
    """
    real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    z = torch.randn((*shape, 2), generator=generator, dtype=real_dtype,
                    device=generator.device)
    if device is not None:
        z = z.to(device)
    return torch.view_as_complex(z) * math.sqrt(0.5)


class Channel:
    """Base class. Subclasses implement :meth:`gains`.

    :input x: [..., n], complex. Channel input, unit average power.
    :input no: float. Complex noise variance per channel use.
    :input generator: ``torch.Generator``. The only source of randomness; its draws
        happen on its own device and are moved to ``x``'s (see :func:`complex_normal`).
    :output y: [..., n], complex. Channel output.
    :output h: [..., n] or scalar, complex. Channel gains (perfect CSI).
    """

    #: True when ``h`` is identically 1 (no fading)
    is_awgn = False

    def capacity_model(self) -> str | None:
        """The channel whose capacity :mod:`lgvsc.link.theory` computes and which this one
        is (``theory.shannon_limit_db(..., channel=...)``): ``"awgn"``, ``"rayleigh"``
        (flat Rayleigh fading, i.i.d. over channel uses), or None when the theory module
        has no capacity of this channel."""
        return None

    def gains(self, shape, generator: torch.Generator, dtype, device) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, no: float, generator: torch.Generator):
        if not torch.is_complex(x):
            raise TypeError("x must be a complex tensor")
        no = check_no(no)
        h = self.gains(x.shape, generator, x.dtype, x.device)
        n = complex_normal(x.shape, generator, x.dtype, x.device) * math.sqrt(no)
        return h * x + n, h


@CHANNELS.register("awgn")
class AWGN(Channel):
    """Additive white Gaussian noise, ``h = 1``."""

    is_awgn = True

    def capacity_model(self):
        return "awgn"

    def gains(self, shape, generator, dtype, device):
        return torch.ones((), dtype=dtype, device=device)


def _block_repeat(h_blocks: torch.Tensor, coherence: int, n: int) -> torch.Tensor:
    """Hold each gain for ``coherence`` consecutive channel uses along the last axis."""
    return h_blocks.repeat_interleave(coherence, dim=-1)[..., :n]


@CHANNELS.register("rayleigh")
class RayleighBlockFading(Channel):
    """Flat Rayleigh block fading, ``h ~ CN(0, 1)``.

    :param coherence: Channel uses over which ``h`` stays constant (along the
        last axis of ``x``); independent between blocks. 1 = fast fading.
    """

    def __init__(self, coherence: int = 1):
        if not isinstance(coherence, int) or isinstance(coherence, bool) or coherence < 1:
            raise ValueError(f"coherence must be an integer >= 1, got {coherence!r}")
        self.coherence = coherence

    def capacity_model(self):
        """``"rayleigh"`` for fast fading (``coherence`` 1, i.i.d. gains: the ergodic
        capacity is the limit of long codes); None for block fading, where a codeword
        sees only a few fades and no ergodic limit applies to it."""
        return "rayleigh" if self.coherence == 1 else None

    def _scatter(self, shape, generator, dtype, device):
        n = shape[-1] if len(shape) else 1
        nb = -(-n // self.coherence)
        hb = complex_normal((*shape[:-1], nb), generator, dtype, device)
        return _block_repeat(hb, self.coherence, n).reshape(shape)

    def gains(self, shape, generator, dtype, device):
        return self._scatter(shape, generator, dtype, device)


@CHANNELS.register("rician")
class RicianBlockFading(RayleighBlockFading):
    """Flat Rician block fading with K-factor ``k_factor`` (linear, LOS/scatter power).

    ``h = sqrt(K/(K+1)) + sqrt(1/(K+1)) * g`` with ``g ~ CN(0, 1)``, so
    ``E[|h|^2] = 1``; the line-of-sight phase is 0. ``k_factor=0`` is Rayleigh.
    """

    def __init__(self, k_factor: float = 1.0, coherence: int = 1):
        super().__init__(coherence=coherence)
        if isinstance(k_factor, bool) or not (isinstance(k_factor, (int, float))
                                              and math.isfinite(k_factor) and k_factor >= 0):
            raise ValueError(f"k_factor must be a finite number >= 0, got {k_factor!r}")
        self.k_factor = float(k_factor)

    def capacity_model(self):
        """None: no Rician capacity in :mod:`lgvsc.link.theory`."""
        return None

    def gains(self, shape, generator, dtype, device):
        k = self.k_factor
        los = math.sqrt(k / (k + 1.0))
        return los + math.sqrt(1.0 / (k + 1.0)) * self._scatter(shape, generator, dtype, device)


def make_channel(type: str, **params) -> Channel:
    """Build a registered channel by name; unknown names list the valid ones."""
    return CHANNELS.get(type)(**params)
