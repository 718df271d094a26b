"""``summary.csv``: one row per scheme x SNR, the schema every plot reads.

Link scenarios: pooled counts and rates with 95% Clopper-Pearson intervals.
Video scenarios: mean and 95% Student-t interval (over videos x trials) of
every metric and of the CBR, plus the digital pipe's pooled BERs.
For link rates, the BER interval treats bits
as independent, which they are not inside a coded block (errors come in
bursts per failed block), so for coded schemes read the BLER interval.
Theory columns hold the scheme's reference curve at that SNR, empty when
there is none for that channel.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from .scenario import Scenario
from .schemes import SCHEMES
from .seeding import RunContext
from .stats import clopper_pearson

COUNT_FIELDS = ("bits", "bit_errors", "blocks", "block_errors", "raw_bits", "raw_bit_errors",
                "channel_uses", "batches")
FIELDS = ("scheme", "type", "channel", "snr_db", "ber", "ber_lo", "ber_hi", "bler", "bler_lo",
          "bler_hi", "raw_ber") + COUNT_FIELDS + ("units", "stop_reason", "wall_s", "ber_theory",
                                                    "bler_theory", "shannon_limit_db")
#: video summaries: after the per-metric mean / lo / hi columns
VIDEO_TAIL = ("raw_ber", "ber", "bler", "failed_trials", "payload_bits", "channel_uses",
              "unavailable", "wall_s")
TEXT_FIELDS = ("scheme", "type", "channel", "stop_reason", "unavailable")


def scheme_objects(sc: Scenario) -> dict:
    ctx = RunContext(sc.device, sc.precision)
    out = {}
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        out[entry["name"]] = cls(cls.Config.model_validate(entry), ctx)
    return out


def _rate(k, n):
    return k / n if n else math.nan


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of finite ``values`` (NaN bounds for fewer than 2)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if v.size < 2:
        return m, math.nan, math.nan
    half = float(student_t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def summary_fields(sc: Scenario) -> tuple[str, ...]:
    if sc.kind == "link":
        return FIELDS
    per_metric = tuple(f"{m}{sfx}" for m in ["cbr", *sc.metrics] for sfx in ("", "_lo", "_hi"))
    return ("scheme", "type", "channel", "snr_db", "n") + per_metric + VIDEO_TAIL


def summarize(sc: Scenario, rows: list[dict]) -> list[dict]:
    """Aggregate stored unit rows into summary rows (scenario scheme order, SNR ascending)."""
    return (summarize_link if sc.kind == "link" else summarize_video)(sc, rows)


def summarize_video(sc: Scenario, rows: list[dict]) -> list[dict]:
    """Mean and 95% CI over videos x trials of every metric and of the CBR;
    digital-pipe BERs pooled over the group."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["scheme"], float(r["snr_db"]))].append(r)
    out = []
    for entry in sc.schemes:
        name = entry["name"]
        for snr in sorted(s for (n, s) in groups if n == name):
            g = groups[(name, snr)]
            row = dict(scheme=name, type=entry["type"], channel=sc.channel.type, snr_db=snr, n=len(g))
            for m in ["cbr", *sc.metrics]:
                row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(r["metrics"].get(m) for r in g)
            c = {f: sum(r[f] or 0 for r in g) for f in ("bits", "bit_errors", "blocks",
                                                        "block_errors", "raw_bits", "raw_bit_errors")}
            row.update(ber=_rate(c["bit_errors"], c["bits"]), raw_ber=_rate(c["raw_bit_errors"], c["raw_bits"]),
                       bler=_rate(c["block_errors"], c["blocks"]),
                       failed_trials=sum(1 for r in g if r["block_errors"]),
                       payload_bits=float(np.mean([r["bits"] or 0 for r in g])),
                       channel_uses=float(np.mean([r["channel_uses"] for r in g])),
                       unavailable=";".join(m for m in sc.metrics
                                            if all(r["metrics"].get(m) is None for r in g)),
                       wall_s=sum(r["wall_s"] for r in g))
            out.append(row)
    return out


def summarize_link(sc: Scenario, rows: list[dict]) -> list[dict]:
    """One row per scheme x SNR with pooled counts, rates and Clopper-Pearson intervals."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["scheme"], float(r["snr_db"]))].append(r)
    schemes = scheme_objects(sc)
    out = []
    for entry in sc.schemes:
        name, obj = entry["name"], schemes[entry["name"]]
        limit = obj.shannon_limit_db()
        for snr in sorted(s for (n, s) in groups if n == name):
            g = groups[(name, snr)]
            c = {f: sum(r[f] or 0 for r in g) for f in COUNT_FIELDS}
            theo = obj.theory(snr, sc.channel.type)
            row = dict(scheme=name, type=entry["type"], channel=sc.channel.type, snr_db=snr,
                       ber=_rate(c["bit_errors"], c["bits"]),
                       bler=_rate(c["block_errors"], c["blocks"]),
                       raw_ber=_rate(c["raw_bit_errors"], c["raw_bits"]), **c, units=len(g),
                       stop_reason=";".join(sorted({r["stop_reason"] for r in g})),
                       wall_s=sum(r["wall_s"] for r in g),
                       ber_theory=theo["ber"], bler_theory=theo["bler"],
                       shannon_limit_db=limit)
            row["ber_lo"], row["ber_hi"] = clopper_pearson(c["bit_errors"], c["bits"])
            row["bler_lo"], row["bler_hi"] = clopper_pearson(c["block_errors"], c["blocks"])
            out.append(row)
    return out


def _fmt(v):
    if v is None:
        return ""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_summary(path: Path, rows: list[dict], fields=FIELDS) -> Path:
    tmp = Path(path).with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in fields})
    tmp.replace(path)
    return Path(path)


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
