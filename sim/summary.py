"""``summary.csv``: one row per scheme x SNR, the schema every plot reads.

Link scenarios: pooled counts and rates; SNR points skipped by an early stop
(``monte_carlo.stop_at_zero_errors`` / ``min_bler``, :func:`skipped_points`) are
rows with their ``stop_reason`` and empty measured columns. The BLER interval is Clopper-Pearson
over blocks (independent by construction: a block never shares a codeword or
a fade with another). The BER interval is Clopper-Pearson over bits only where
bit errors are independent (uncoded BPSK/QPSK on AWGN, ``ber_ci_over=bits``);
elsewhere errors cluster inside a block (a failed codeword, a deep fade), and
the interval is Clopper-Pearson at the effective sample size of the
block-clustered count (``ber_ci_over=blocks``, :mod:`lgvsc.sim.stats`).

Video scenarios, per scheme x SNR (see :mod:`lgvsc.sim.stats` for the intervals):

* ``videos``, ``trials``; ``failed_trials`` and the **outage** probability
  (failed / trials) with its interval; ``failed_parts`` counts which digital
  part failed (``bitstream:4;metadata:1``);
* ``<metric>``, ``_lo``, ``_hi``: quality **conditioned on success** (failed
  trials left out; empty when every trial failed), over ``videos_ok`` videos
  and ``trials_ok`` trials, interval over ``ci_over_ok``;
* ``<metric>_concealed``, ``_lo``, ``_hi``: the quality of what a viewer sees,
  every trial scored, failed ones as their concealed output, interval over
  ``ci_over``; ``cbr`` likewise over every trial;
* ``keyframe_cbr``: channel uses per keyframe / 3HW (generative schemes);
* the digital pipe's pooled BERs, mean payload bits and channel uses.

The scenario's ``failure: drop | conceal`` picks which of the two quality
columns the tables and figures show (:func:`shown`).

``summary.csv`` holds only what the stored units determine, so two runs of one
scenario write it byte for byte the same; how long the units took is in
``timings.csv`` (:func:`timings`), which is not reproducible.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .metrics import METRICS
from .outputs import atomic_write
from .scenario import Scenario
from .schemes import SCHEMES
from .seeding import RunContext
from .stats import (Estimate, cluster_mean, clopper_pearson, clustered_proportion_ci,
                    effective_ci, equal_cluster_deff)

COUNT_FIELDS = ("bits", "bit_errors", "blocks", "block_errors", "raw_bits", "raw_bit_errors",
                "channel_uses", "batches")
FIELDS = ("scheme", "type", "channel", "snr_db", "ber", "ber_lo", "ber_hi", "ber_ci_over", "bler",
          "bler_lo", "bler_hi", "raw_ber") + COUNT_FIELDS + (
    "units", "stop_reason", "ber_theory", "bler_theory", "shannon_limit_db")
#: video summaries: the head, then per-metric columns, then the tail
VIDEO_HEAD = ("scheme", "type", "channel", "snr_db", "failure", "videos", "trials",
              "failed_trials", "outage", "outage_lo", "outage_hi", "failed_parts",
              "videos_ok", "trials_ok", "ci_over", "ci_over_ok")
VIDEO_TAIL = ("keyframe_cbr", "raw_ber", "ber", "bler", "payload_bits", "channel_uses",
              "unavailable")
#: timings.csv: the summary's row keys, how many units, their summed wall time (s)
TIMING_FIELDS = ("scheme", "snr_db", "units", "wall_s")
TEXT_FIELDS = ("scheme", "type", "channel", "stop_reason", "unavailable", "failure",
               "failed_parts", "ci_over", "ci_over_ok", "ber_ci_over")


def scheme_objects(sc: Scenario) -> dict:
    ctx = RunContext(sc.device, sc.precision)
    out = {}
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        out[entry["name"]] = cls(cls.Config.model_validate(entry), ctx)
    return out


def _rate(k, n):
    return k / n if n else math.nan


def summary_fields(sc: Scenario) -> tuple[str, ...]:
    if sc.kind == "link":
        return FIELDS
    cols = [f"cbr{sfx}" for sfx in ("", "_lo", "_hi")]
    for m in sc.metrics:
        cols += [f"{m}{sfx}" for sfx in ("", "_lo", "_hi")]
        cols += [f"{m}_concealed{sfx}" for sfx in ("", "_lo", "_hi")]
    return VIDEO_HEAD + tuple(cols) + VIDEO_TAIL


def summarize(sc: Scenario, rows: list[dict]) -> list[dict]:
    """Aggregate stored unit rows into summary rows (scenario scheme order, SNR ascending)."""
    return (summarize_link if sc.kind == "link" else summarize_video)(sc, rows)


def _groups(rows):
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["scheme"], float(r["snr_db"]))].append(r)
    return groups


def _by_video(rows, key, only_ok: bool = False) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for r in rows:
        if not (only_ok and r["failed"]):
            out[r["video"]].append(key(r))
    return out


def _put(row: dict, name: str, e: Estimate) -> None:
    row[name], row[f"{name}_lo"], row[f"{name}_hi"] = e.mean, e.lo, e.hi


def _outage(row: dict, g: list[dict], confidence: float) -> None:
    per = defaultdict(lambda: [0, 0])
    for r in g:
        per[r["video"]][0] += int(bool(r["failed"]))
        per[r["video"]][1] += 1
    k = np.array([c[0] for c in per.values()])
    n = np.array([c[1] for c in per.values()])
    _, lo, hi = clustered_proportion_ci(k, n, confidence)
    parts = defaultdict(int)
    for r in g:
        for p in (r["extra"].get("failed_parts") or []):
            parts[p] += 1
    row.update(failed_trials=int(k.sum()), outage=float(k.sum() / n.sum()), outage_lo=lo,
               outage_hi=hi, failed_parts=";".join(f"{p}:{c}" for p, c in parts.items()))


def summarize_video(sc: Scenario, rows: list[dict]) -> list[dict]:
    """Outage, quality conditioned on success and of the concealed output, CBR,
    per-keyframe CBR and digital-pipe counts per scheme x SNR."""
    groups = _groups(rows)
    conf, method = sc.statistics.confidence, sc.statistics.interval
    out = []
    for entry in sc.schemes:
        name = entry["name"]
        for snr in sorted(s for (n, s) in groups if n == name):
            g = groups[(name, snr)]
            row = dict(scheme=name, type=entry["type"], channel=sc.channel.type, snr_db=snr,
                       failure=sc.failure, videos=len({r["video"] for r in g}), trials=len(g))
            _outage(row, g, conf)
            ok = [r for r in g if not r["failed"]]
            row.update(videos_ok=len({r["video"] for r in ok}), trials_ok=len(ok))
            e = cluster_mean(_by_video(g, lambda r: r["metrics"].get("cbr")), conf, method,
                             (0.0, math.inf))
            _put(row, "cbr", e)
            row["ci_over"] = e.over
            for m in sc.metrics:
                bounds = METRICS.get(m).bounds
                value = lambda r, m=m: r["metrics"].get(m)  # noqa: E731
                e_ok = cluster_mean(_by_video(g, value, True), conf, method, bounds)
                _put(row, m, e_ok)
                row["ci_over_ok"] = row.get("ci_over_ok") or e_ok.over
                _put(row, f"{m}_concealed", cluster_mean(_by_video(g, value), conf, method, bounds))
            kf = [r["extra"]["keyframe_cbr"] for r in g if r["extra"].get("keyframe_cbr") is not None]
            c = {f: sum(r[f] or 0 for r in g) for f in ("bits", "bit_errors", "blocks",
                                                        "block_errors", "raw_bits", "raw_bit_errors")}
            row.update(keyframe_cbr=float(np.mean(kf)) if kf else None,
                       ber=_rate(c["bit_errors"], c["bits"]),
                       raw_ber=_rate(c["raw_bit_errors"], c["raw_bits"]),
                       bler=_rate(c["block_errors"], c["blocks"]),
                       payload_bits=float(np.mean([r["bits"] or 0 for r in g])),
                       channel_uses=float(np.mean([r["channel_uses"] for r in g])),
                       unavailable=";".join(m for m in sc.metrics
                                            if all(r["metrics"].get(m) is None for r in g)))
            out.append(row)
    return out


def shown(row: dict, metric: str, failure: str) -> tuple[float | None, float | None,
                                                          float | None, bool]:
    """(value, lo, hi, partial) of ``metric`` as tables and plots show it under the
    ``failure`` policy: ``drop`` -> conditioned on success (None when every trial
    failed), ``conceal`` -> every trial scored. ``partial``: some trials failed."""
    key = metric if failure == "drop" or metric == "cbr" else f"{metric}_concealed"
    outage = row.get("outage") or 0.0
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = None
    return value, row.get(f"{key}_lo"), row.get(f"{key}_hi"), 0 < outage


def _short_e(v: float) -> str:
    """``v`` in e-notation with the fewest digits that give it back (1e-03, 2.5e-03)."""
    for p in range(16):
        text = f"{v:.{p}e}"
        if float(text) == v:
            return text
    return repr(v)


def stop_trigger(mc, row: dict) -> str | None:
    """Why stored link unit ``row`` stops its scheme's sweep under the Monte-Carlo
    settings ``mc`` (``stop_at_zero_errors``, ``min_bler``), else None:
    ``no block errors`` or ``BLER 3.1e-04 < min_bler 1e-03``."""
    errors, blocks = int(row["block_errors"] or 0), int(row["blocks"] or 0)
    if blocks <= 0:
        return None
    if mc.stop_at_zero_errors and errors == 0:
        return "no block errors"
    bler = errors / blocks
    if mc.min_bler is not None and bler < mc.min_bler:
        for p in range(1, 8):  # enough digits that the shown BLER is below the bound too
            shown = f"{bler:.{p}e}"
            if float(shown) < mc.min_bler:
                break
        return f"BLER {shown} < min_bler {_short_e(mc.min_bler)}"
    return None


def skipped_points(sc: Scenario, rows: list[dict]) -> dict[tuple[str, float], str]:
    """{(scheme, SNR): ``skipped: <why> at <SNR> dB``} of a link sweep that stops early
    (``monte_carlo.stop_at_zero_errors`` / ``min_bler``): per scheme, in ascending SNR
    order, every planned point without a stored unit above the lowest stored point
    that triggered the stop (:func:`stop_trigger`; its SNR is the one named). Decided
    from the scheme's stored units alone, so the same units give the same skips
    whichever executor, worker count or order computed them; stored units above the
    trigger (from a run without the options) stay results, never skipped."""
    if sc.kind != "link" or not sc.monte_carlo.stops_early():
        return {}
    have = {(r["scheme"], float(r["snr_db"])): r for r in rows}
    out = {}
    for entry in sc.schemes:
        name, why = entry["name"], None
        for snr in sorted(float(s) for s in sc.channel.snr_db):
            r = have.get((name, snr))
            if r is None:
                if why is not None:
                    out[(name, snr)] = why
            elif why is None:
                trigger = stop_trigger(sc.monte_carlo, r)
                if trigger is not None:
                    why = f"skipped: {trigger} at {snr:g} dB"
    return out


def summarize_link(sc: Scenario, rows: list[dict]) -> list[dict]:
    """One row per scheme x SNR with pooled counts, rates and Clopper-Pearson intervals;
    an SNR point skipped by an early stop (:func:`skipped_points`) is a row with its
    ``stop_reason``, ``units`` 0, the theory columns and no measured numbers."""
    groups = _groups(rows)
    skipped = skipped_points(sc, rows)
    schemes = scheme_objects(sc)
    conf = sc.statistics.confidence
    out = []
    for entry in sc.schemes:
        name, obj = entry["name"], schemes[entry["name"]]
        limit = obj.shannon_limit_db()
        for snr in sorted({s for (n, s) in groups if n == name}
                          | {s for (n, s) in skipped if n == name}):
            if (name, snr) in skipped:
                theo = obj.theory(snr, sc.channel.type)
                out.append(dict(scheme=name, type=entry["type"], channel=sc.channel.type,
                                snr_db=snr, units=0, stop_reason=skipped[(name, snr)],
                                ber_theory=theo["ber"], bler_theory=theo["bler"],
                                shannon_limit_db=limit))
                continue
            g = groups[(name, snr)]
            c = {f: sum(r[f] or 0 for r in g) for f in COUNT_FIELDS}
            theo = obj.theory(snr, sc.channel.type)
            row = dict(scheme=name, type=entry["type"], channel=sc.channel.type, snr_db=snr,
                       ber=_rate(c["bit_errors"], c["bits"]),
                       bler=_rate(c["block_errors"], c["blocks"]),
                       raw_ber=_rate(c["raw_bit_errors"], c["raw_bits"]), **c, units=len(g),
                       stop_reason=";".join(sorted({r["stop_reason"] or "" for r in g})),
                       ber_theory=theo["ber"], bler_theory=theo["bler"],
                       shannon_limit_db=limit)
            row["ber_lo"], row["ber_hi"], row["ber_ci_over"] = _ber_interval(obj, sc, g, c, conf)
            row["bler_lo"], row["bler_hi"] = clopper_pearson(c["block_errors"], c["blocks"], conf)
            out.append(row)
    return out


def _ber_interval(obj, sc: Scenario, g: list[dict], c: dict, conf: float):
    """(lo, hi, over): over bits where errors are independent, else over blocks."""
    if obj.independent_bit_errors(sc.channel.type):
        return (*clopper_pearson(c["bit_errors"], c["bits"], conf), "bits")
    size = int(g[0]["extra"].get("block_bits") or 0)
    if size <= 0 or any("bit_errors_sq" not in r["extra"] for r in g):
        return math.nan, math.nan, "blocks"  # stored before the cluster term was kept
    sq = sum(int(r["extra"]["bit_errors_sq"]) for r in g)
    deff = equal_cluster_deff(c["blocks"], size, c["bit_errors"], sq)
    _, lo, hi = effective_ci(c["bit_errors"], c["bits"], deff, size, conf, "cluster")
    return lo, hi, "blocks"


def _fmt(v):
    if v is None:
        return ""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def timings(sc: Scenario, rows: list[dict]) -> list[dict]:
    """timings.csv rows, in the summary's order: per scheme x SNR the number of units
    and their summed wall time in seconds (units without one count 0 s)."""
    groups = _groups(rows)
    return [dict(scheme=e["name"], snr_db=snr, units=len(groups[(e["name"], snr)]),
                 wall_s=sum(r["wall_s"] or 0.0 for r in groups[(e["name"], snr)]))
            for e in sc.schemes for snr in sorted(s for (n, s) in groups if n == e["name"])]


def write_summary(path: Path, rows: list[dict], fields=FIELDS) -> Path:
    """Write ``rows`` as CSV with columns ``fields``, atomically; returns the path."""
    with atomic_write(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in fields})
    return Path(path)


def write_timings(path: Path, rows: list[dict]) -> Path:
    """timings.csv (:func:`timings`), atomically."""
    return write_summary(path, rows, TIMING_FIELDS)


def read_summary(path: Path) -> list[dict]:
    """Rows of a summary.csv with numbers parsed (empty cells -> None)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            d = {}
            for k, v in r.items():
                if k in TEXT_FIELDS:
                    d[k] = v
                else:
                    d[k] = float(v) if v != "" else None
            out.append(d)
    return out
