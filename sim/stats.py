"""Intervals that respect how the experiment was sampled.

Video sweeps are clustered: a cell (scheme x SNR) holds ``trials`` channel
draws of each of its videos, and most of the spread is between videos. So

* a quality interval is computed over **per-video means** (each video's mean
  over its trials, every video weighted equally): Student-t over the videos
  (default) or a bootstrap of the videos (``scipy.stats.bootstrap``, BCa),
  clipped to the metric's range. With a single video the population is that
  video's channel draws, and the interval is over its trials. Every interval
  says what it was computed over (``videos`` or ``trials``) and how many.
* a proportion (outage, or a BER whose errors come in clusters) gets a
  Clopper-Pearson interval at the **effective sample size** ``n / deff``, with
  the design effect ``deff`` estimated from the cluster totals and never below
  1 (Korn & Graubard, Survey Methodology 24(2), 1998).
* paired claims ("A beats B") use per-video differences of means, with the
  same interval over videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binomtest, bootstrap
from scipy.stats import t as student_t

INTERVALS = ("t", "bootstrap")


def clopper_pearson(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (conservative) interval for a binomial proportion k/n.

    Integer counts use ``scipy.stats.binomtest(...).proportion_ci("exact")``;
    a non-integer (effective) ``k`` and ``n`` use the same beta quantiles.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if float(k).is_integer() and float(n).is_integer():
        ci = binomtest(int(k), int(n)).proportion_ci(confidence, method="exact")
        return float(ci.low), float(ci.high)
    a = 1.0 - confidence
    lo = 0.0 if k <= 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def design_effect(k: np.ndarray, n: np.ndarray) -> float:
    """Kish design effect of the pooled proportion sum(k)/sum(n) from cluster
    totals ``k`` (events) and ``n`` (trials) per cluster; NaN when it cannot
    be estimated (fewer than 2 clusters, or p in {0, 1})."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    c, total = len(n), n.sum()
    if c < 2 or total <= 0:
        return math.nan
    p = k.sum() / total
    if p <= 0 or p >= 1:
        return math.nan
    var_cluster = c / (c - 1) * np.sum((k - p * n) ** 2) / total**2  # ratio estimator
    return float(var_cluster / (p * (1 - p) / total))


def equal_cluster_deff(clusters: int, size: int, events: int, events_sq: int) -> float:
    """Design effect of ``events / (clusters x size)`` from equal-size clusters, given
    the sum of events and the sum of squared events per cluster (so a long
    simulation stores three numbers, not one count per cluster); NaN when unknown."""
    total = clusters * size
    if clusters < 2 or total <= 0:
        return math.nan
    p = events / total
    if p <= 0 or p >= 1:
        return math.nan
    ss = events_sq - 2 * p * size * events + clusters * (p * size) ** 2
    var_cluster = clusters / (clusters - 1) * ss / total**2
    return float(var_cluster / (p * (1 - p) / total))


def effective_ci(events: float, total: float, deff: float, max_deff: float,
                 confidence: float = 0.95, unknown_deff: str = "one") -> tuple[float, float, float]:
    """(n_eff, lo, hi): Clopper-Pearson at ``total / deff``, deff clipped to [1, max_deff];
    an unknown (NaN) deff is 1 or ``max_deff`` (see :func:`clustered_proportion_ci`)."""
    if total <= 0:
        return 0.0, math.nan, math.nan
    if math.isnan(deff):
        deff = 1.0 if unknown_deff == "one" else max_deff
    deff = min(max(deff, 1.0), max(max_deff, 1.0))
    n_eff = total / deff
    lo, hi = clopper_pearson(events / total * n_eff, n_eff, confidence)
    return n_eff, lo, hi


def clustered_proportion_ci(k, n, confidence: float = 0.95,
                            unknown_deff: str = "one") -> tuple[float, float, float]:
    """(effective sample size, lo, hi) for the pooled proportion of clustered counts.

    :param k, n: per-cluster event and trial counts.
    :param unknown_deff: what to assume when the design effect cannot be estimated
        (no events, or only events): ``"one"`` (Korn-Graubard's choice: independent
        trials) or ``"cluster"`` (each cluster counts once: the most conservative,
        right when a cluster's trials are nearly all-or-nothing, as bits of a code block).
    The design effect is capped at the largest cluster size (perfect correlation).
    """
    k, n = np.asarray(k, float), np.asarray(n, float)
    if n.size == 0:
        return 0.0, math.nan, math.nan
    return effective_ci(float(k.sum()), float(n.sum()), design_effect(k, n), float(n.max()),
                        confidence, unknown_deff)


@dataclass
class Estimate:
    """A mean and its interval, with what the interval was computed over."""

    mean: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    over: str = ""  # "videos" | "trials" | ""
    videos: int = 0
    trials: int = 0


def _finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)


def _interval(x: np.ndarray, confidence: float, method: str, seed: int) -> tuple[float, float]:
    m = float(x.mean())
    if x.size < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return m, m
    if method == "bootstrap" and x.size >= 3:
        res = bootstrap((x,), np.mean, confidence_level=confidence, method="BCa",
                        n_resamples=4999, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi
    half = float(student_t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m - half, m + half


def cluster_mean(by_video: dict[str, list], confidence: float = 0.95, method: str = "t",
                 bounds: tuple[float, float] = (-math.inf, math.inf), seed: int = 0) -> Estimate:
    """Mean over videos of per-video means, interval over videos (or over the
    trials of the only video), clipped to ``bounds``.

    :param by_video: {video: [value per trial]}; None / NaN values are skipped, and
        a video with no value left does not count.
    :param method: ``"t"`` (Student-t over the per-video means) or ``"bootstrap"``
        (BCa over the per-video means; falls back to t below 3 videos).
    """
    if method not in INTERVALS:
        raise ValueError(f"method must be one of {', '.join(INTERVALS)}, got {method!r}")
    vals = {v: _finite(xs) for v, xs in by_video.items()}
    vals = {v: x for v, x in vals.items() if x.size}
    trials = sum(x.size for x in vals.values())
    if not vals:
        return Estimate(videos=0, trials=0)
    if len(vals) == 1:
        x = next(iter(vals.values()))
        over = "trials" if x.size > 1 else ""
    else:
        x = np.array([x.mean() for x in vals.values()])
        over = "videos"
    lo, hi = _interval(x, confidence, method, seed)
    if not math.isnan(lo):
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(float(x.mean()), lo, hi, over, len(vals), trials)


def paired_difference(a: dict[str, list], b: dict[str, list], confidence: float = 0.95,
                      method: str = "t") -> tuple[Estimate, int]:
    """Mean of per-video differences ``mean(a_v) - mean(b_v)`` over the videos both
    have values for, with its interval over videos; with one shared video, Welch's
    interval over the two sets of trials. Also returns in how many videos a > b."""
    common = [v for v in a if v in b and _finite(a[v]).size and _finite(b[v]).size]
    if not common:
        return Estimate(), 0
    da = {v: _finite(a[v]) for v in common}
    db = {v: _finite(b[v]) for v in common}
    wins = sum(1 for v in common if da[v].mean() > db[v].mean())
    trials = sum(min(da[v].size, db[v].size) for v in common)
    if len(common) > 1:
        d = np.array([da[v].mean() - db[v].mean() for v in common])
        lo, hi = _interval(d, confidence, method, 0)
        return Estimate(float(d.mean()), lo, hi, "videos", len(common), trials), wins
    x, y = da[common[0]], db[common[0]]
    m = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return Estimate(m, math.nan, math.nan, "", 1, trials), wins
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if va + vb == 0:
        return Estimate(m, m, m, "trials", 1, trials), wins
    dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, dof) * math.sqrt(va + vb))
    return Estimate(m, m - half, m + half, "trials", 1, trials), wins
