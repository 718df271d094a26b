"""Closed-form and numerical reference curves.

All SNRs are Es/N0 in dB per complex channel use (unit-energy constellations).

* :func:`ber_uncoded` -- exact BER of Gray BPSK / QPSK / square M-QAM on AWGN
  (Cho & Yoon, IEEE Trans. Commun. 2002) and its exact average over flat
  Rayleigh fading with perfect CSI (i.i.d. per symbol).
* :func:`capacity` and :func:`dispersion` -- per complex channel use, either
  for a Gaussian input (closed form) or for equiprobable M-QAM input
  ("coded modulation" constraint, by Gauss-Hermite quadrature).
* :func:`capacity_rayleigh` -- the ergodic capacity of flat Rayleigh fading
  with perfect receiver CSI, ``E_h[C(|h|^2 Es/N0)]`` with ``|h|^2 ~ Exp(1)``,
  for either input.
* :func:`shannon_limit_db` -- the Es/N0 at which that capacity (AWGN, or with
  ``channel="rayleigh"`` the ergodic Rayleigh one) equals ``rate * bits_per_symbol``.
* :func:`bler_normal_approx` -- Polyanskiy-Poor-Verdu normal approximation
  ``Q((n C - k + log2(n)/2) / sqrt(n V))`` with ``n`` channel uses.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc
from scipy.stats import norm

from .modem import MODULATIONS, bits_per_symbol

LOG2E = math.log2(math.e)


def _db(snr_db):
    return 10.0 ** (np.asarray(snr_db, dtype=float) / 10.0)


def _pam_level_terms(m: int):
    """Cho-Yoon coefficients for a Gray square 2^m-QAM: for every PAM bit level
    k (1 = most significant) a list of (coefficient, erfc multiplier a) with
    ``P_b(k) = sum coef * erfc(a * sqrt(Es/N0))``."""
    big_m = 2 ** m
    side = int(round(math.sqrt(big_m)))
    scale = math.sqrt(3.0 / (2.0 * (big_m - 1)))
    levels = []
    for k in range(1, m // 2 + 1):
        terms = []
        for i in range(int((1 - 2.0 ** -k) * side)):
            f = math.floor(i * 2 ** (k - 1) / side)
            coef = (-1) ** f * (2 ** (k - 1) - math.floor(i * 2 ** (k - 1) / side + 0.5)) / side
            terms.append((coef, (2 * i + 1) * scale))
        levels.append(terms)
    return levels


def _avg_erfc(a: float, gamma: np.ndarray, channel: str) -> np.ndarray:
    if channel == "awgn":
        return erfc(a * np.sqrt(gamma))
    if channel == "rayleigh":  # E[erfc(a sqrt(g))], g ~ Exp(mean gamma)
        return 1.0 - np.sqrt(a * a * gamma / (1.0 + a * a * gamma))
    raise ValueError(f"channel must be 'awgn' or 'rayleigh', got {channel!r}")


def ber_uncoded_per_bit(modulation: str, snr_db, channel: str = "awgn") -> np.ndarray:
    """BER of every bit position of a symbol, shape [..., m].

    Positions follow the mapper's labelling: for M-QAM, positions ``2j`` and
    ``2j+1`` are PAM level ``j+1`` of the in-phase and quadrature rails.
    """
    m = bits_per_symbol(modulation)
    gamma = _db(snr_db)
    if m == 1:  # BPSK: Q(sqrt(2 Es/N0)) = erfc(sqrt(Es/N0)) / 2
        return (0.5 * _avg_erfc(1.0, gamma, channel))[..., None]
    per_level = [sum(c * _avg_erfc(a, gamma, channel) for c, a in terms)
                 for terms in _pam_level_terms(m)]
    return np.stack([per_level[j // 2] for j in range(m)], axis=-1)


def ser_uncoded_awgn(modulation: str, snr_db) -> np.ndarray:
    """Exact symbol error rate of BPSK / square M-QAM on AWGN (independent rails)."""
    m = bits_per_symbol(modulation)
    gamma = _db(snr_db)
    if m == 1:
        return 0.5 * erfc(np.sqrt(gamma))
    side = 2 ** (m // 2)
    p_rail = (1 - 1 / side) * erfc(np.sqrt(3 * gamma / (2 * (2**m - 1))))
    return 1 - (1 - p_rail) ** 2


def bler_uncoded_awgn(modulation: str, snr_db, k: int) -> np.ndarray:
    """Exact block error rate of ``k`` uncoded bits (``k/m`` independent symbols) on AWGN."""
    return 1 - (1 - ser_uncoded_awgn(modulation, snr_db)) ** (k / bits_per_symbol(modulation))


def ber_uncoded(modulation: str, snr_db, channel: str = "awgn") -> np.ndarray:
    """Average uncoded BER over the bits of a symbol (exact)."""
    return ber_uncoded_per_bit(modulation, snr_db, channel).mean(axis=-1)


# -- capacity and dispersion ----------------------------------------------
@lru_cache(maxsize=None)
def _gh(order: int = 24):
    t, w = np.polynomial.hermite.hermgauss(order)
    # nodes/weights for a standard complex Gaussian n = (u + j v)/sqrt(2)
    u, v = np.meshgrid(t, t, indexing="ij")
    return (u + 1j * v).ravel(), (np.outer(w, w) / math.pi).ravel()


def _constellation(modulation: str) -> np.ndarray:
    from sionna.phy.mapping import pam, qam  # local: numpy-only helpers

    ctype, m = MODULATIONS[modulation]
    return (qam(m) if ctype == "qam" else pam(m).astype(complex)).astype(np.complex128)


@lru_cache(maxsize=4096)
def _qam_moments(modulation: str, snr: float) -> tuple[float, float]:
    """(E[i], Var[i]) of the information density i(X;Y) in bits, M-QAM input."""
    x = _constellation(modulation)
    no = 1.0 / snr
    z, w = _gh()
    noise = z * math.sqrt(no)
    mean = second = 0.0
    for xi in x:  # y = xi + n; i = log2 M - log2 sum_x' exp((|n|^2 - |y - x'|^2) / no)
        d = (np.abs(noise) ** 2)[:, None] - np.abs((xi + noise)[:, None] - x[None, :]) ** 2
        mx = d.max(axis=1)
        lse = mx / no + np.log(np.exp((d - mx[:, None]) / no).sum(axis=1))
        i = math.log2(len(x)) - lse * LOG2E
        mean += (w * i).sum()
        second += (w * i * i).sum()
    mean /= len(x)
    second /= len(x)
    return float(mean), float(max(second - mean * mean, 0.0))


def capacity(snr_db: float, modulation: str | None = None) -> float:
    """Bits per complex channel use: Gaussian input if ``modulation`` is None."""
    snr = float(_db(snr_db))
    if modulation is None:
        return math.log2(1.0 + snr)
    return _qam_moments(modulation, snr)[0]


def dispersion(snr_db: float, modulation: str | None = None) -> float:
    """Channel dispersion V in bits^2 per complex channel use."""
    snr = float(_db(snr_db))
    if modulation is None:
        return snr * (snr + 2.0) / (snr + 1.0) ** 2 * LOG2E**2
    return _qam_moments(modulation, snr)[1]


#: the QAM capacity table behind :func:`capacity_rayleigh`: Es/N0 from .. to (dB), step
_TABLE_DB = (-20.0, 45.0, 0.5)
#: the fading gain's log, t = ln |h|^2, integrated over [lo, hi] in steps of dt: the
#: Exp(1) mass outside is below 1e-5 (t < -12) and e^-33 (t > 3.5)
_GAIN_LOG = (-12.0, 3.5, 0.01)


@lru_cache(maxsize=None)
def _qam_capacity_spline(modulation: str):
    """Cubic spline of the ``modulation``-input AWGN capacity over :data:`_TABLE_DB`."""
    from scipy.interpolate import CubicSpline

    lo, hi, step = _TABLE_DB
    grid = np.arange(lo, hi + step / 2, step)
    return CubicSpline(grid, [capacity(float(s), modulation) for s in grid])


def _awgn_capacity_db(snr_db: np.ndarray, modulation: str | None) -> np.ndarray:
    """AWGN capacity (bits) at the Es/N0 values ``snr_db``: closed form for a Gaussian
    input; for QAM the spline inside the table, the Gaussian value below it (the two
    agree to O(Es/N0) there) and ``log2 M`` above it (saturated)."""
    gauss = np.log2(1.0 + _db(snr_db))
    if modulation is None:
        return gauss
    lo, hi, _ = _TABLE_DB
    inside = np.clip(snr_db, lo, hi)
    qam = _qam_capacity_spline(modulation)(inside)
    qam = np.where(snr_db < lo, gauss, qam)
    return np.where(snr_db > hi, float(bits_per_symbol(modulation)), qam)


def capacity_rayleigh(snr_db: float, modulation: str | None = None) -> float:
    """Ergodic capacity (bits per complex channel use) of flat Rayleigh fading, i.i.d.
    over channel uses, with perfect CSI at the receiver: ``E[C(G Es/N0)]``, ``G ~
    Exp(1)``, ``C`` the AWGN capacity of a Gaussian (``modulation`` None) or an
    equiprobable QAM input. Computed over ``t = ln G`` (density ``exp(t - e^t)``) by
    the trapezoid rule; the QAM capacity comes from a cubic spline of its exact values
    every 0.5 dB (accurate to about 1e-4 bit)."""
    lo, hi, dt = _GAIN_LOG
    t = np.arange(lo, hi + dt / 2, dt)
    weight = np.exp(t - np.exp(t)) * dt
    inner = _awgn_capacity_db(float(snr_db) + 10.0 * t / math.log(10.0), modulation)
    return float((weight * inner).sum() / weight.sum())


def shannon_limit_db(rate: float, modulation: str | None = None,
                     bits_per_use: float | None = None, channel: str = "awgn") -> float:
    """Smallest Es/N0 (dB) whose capacity reaches ``rate * m`` bits per channel use.

    With ``modulation=None`` the input is Gaussian and ``bits_per_use`` must
    give the spectral efficiency directly (or ``rate`` is taken as it).
    ``channel``: ``"awgn"`` or ``"rayleigh"`` (the ergodic capacity of i.i.d. flat
    Rayleigh fading with receiver CSI, :func:`capacity_rayleigh`; Es/N0 is the
    average received SNR).
    """
    if channel not in ("awgn", "rayleigh"):
        raise ValueError(f"channel must be 'awgn' or 'rayleigh', got {channel!r}")
    if modulation is None:
        eta = rate if bits_per_use is None else bits_per_use
        if channel == "awgn":
            return 10 * math.log10(2.0**eta - 1.0)
        return brentq(lambda s: capacity_rayleigh(s) - eta, -30.0, 60.0, xtol=1e-4)
    eta = rate * bits_per_symbol(modulation)
    if not 0 < eta < bits_per_symbol(modulation):
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    if channel == "awgn":
        return brentq(lambda s: capacity(s, modulation) - eta, -20.0, 40.0, xtol=1e-4)
    return brentq(lambda s: capacity_rayleigh(s, modulation) - eta, -20.0, 60.0, xtol=1e-4)


def bler_normal_approx(n: int, k: int, snr_db, modulation: str | None = None) -> np.ndarray:
    """Normal approximation of the best achievable BLER of an (n channel uses, k bits) code."""
    out = []
    for s in np.atleast_1d(np.asarray(snr_db, dtype=float)):
        c, v = capacity(s, modulation), dispersion(s, modulation)
        arg = (n * c - k + 0.5 * math.log2(n)) / math.sqrt(max(n * v, 1e-300))
        out.append(norm.sf(arg))
    return np.asarray(out).reshape(np.shape(snr_db))
