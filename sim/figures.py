"""Video-scenario figures and tables, all from ``summary.csv``.

Quality is shown under the scenario's ``failure`` policy
(:func:`~lgvsc.sim.summary.shown`): with ``drop`` (the paper's convention) a
cell is the quality of the trials that succeeded, a cell where every trial
failed has no quality ("–" in tables, no point in plots), and a cell where
some trials failed is drawn hollow; with ``conceal`` every trial is scored
as what a viewer sees, and cells that include concealed failures are hollow.

* ``fig3_<metric>`` -- metric vs SNR, one line per scheme, CI bars (the layout
  of the paper's Fig. 3); ``fig3`` has every metric and the outage as panels;
* ``outage`` -- outage probability vs SNR with its interval;
* ``cbr_table.csv`` / ``cbr_table.md`` -- CBR per SNR (rows) and scheme
  (columns), Table II's layout; "–" where every trial failed, the outage
  fraction next to a cell where some did;
* ``quality_table.md`` -- per scheme and SNR: CBR, outage, each metric with
  its interval and how many videos and trials it rests on;
* ``quality_vs_cbr_<metric>`` -- metric vs CBR, each point labelled with its SNR;
* ``quality_vs_ber_<metric>`` -- metric vs the digital pipe's measured BER before
  and after decoding, only for the schemes whose measured BER is the BER of the
  video itself (:attr:`~lgvsc.sim.schemes.transmission.VideoScheme.measured_ber`:
  the codec-over-LDPC schemes); the schemes left out are named with what their
  BER is of (SoftCast's chunk metadata, LGVSC's captions and side info); not
  written when no scheme qualifies.

Metric axes and table headers are labelled by
:func:`~lgvsc.sim.metrics.axis_label` (unit and the arrow towards better quality,
from each metric class).
"""

from __future__ import annotations

import csv
import math
import textwrap
from pathlib import Path

import numpy as np

from .metrics import axis_label
from .outputs import atomic_write, write_text
from .schemes import SCHEMES
from .summary import shown

DASH = "\u2013"
#: where a legend goes when it must not cover data: outside the axes, right of them
LEGEND_OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically (a reader or a kill never sees
    part of one), close the figure."""
    import matplotlib.pyplot as plt

    paths = []
    try:
        for ext in ("png", "pdf"):
            p = out_dir / f"{stem}.{ext}"
            with atomic_write(p, "wb") as f:
                fig.savefig(f, format=ext, dpi=150)
            paths.append(p)
    finally:
        plt.close(fig)
    return paths


def _legend(ax, fontsize=7, **where) -> None:
    """The legend of ``ax`` (if it has labelled artists), placed by ``where``."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, **where)


def _log_x_ticks(ax) -> None:
    """Legible log-scale x ticks: below two decades, labels at 1, 2 and 5 x 10^k only
    (matplotlib would label every minor tick, and the labels run into each other)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    lo, hi = ax.get_xlim()
    if lo > 0 and hi / lo < 100:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _start(rows, schemes, metrics):
    """(pyplot, scheme colours, rows by scheme, metrics that have values)."""
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    colors = {s: cmap(i % 10) for i, s in enumerate(schemes)}
    shown_metrics = [m for m in metrics
                     if any(_num(r.get(m)) is not None or _num(r.get(f"{m}_concealed")) is not None
                            for r in rows)]
    return plt, colors, {s: [r for r in rows if r["scheme"] == s] for s in schemes}, shown_metrics


def _points(pts, metric, failure, x_key):
    """[(x, y, lo, hi, partial)] of the cells that have a value to show."""
    out = []
    for r in pts:
        y, lo, hi, partial = shown(r, metric, failure)
        x = _num(r.get(x_key))
        if y is not None and x is not None:
            out.append((x, y, _num(lo), _num(hi), partial))
    return out


def _dodge(groups, x_key: str) -> dict[str, float]:
    """Small SNR offsets per scheme so that interval bars do not hide each other."""
    if x_key != "snr_db":
        return dict.fromkeys(groups, 0.0)
    n = len(groups)
    return {name: 0.06 * (i - (n - 1) / 2) for i, name in enumerate(groups)}


def _metric_panel(ax, groups, colors, metric, failure, x_key="snr_db"):
    dodge = _dodge(groups, x_key)
    for name, pts in groups.items():
        p = _points(pts, metric, failure, x_key)
        if not p:
            continue
        x = np.array([q[0] for q in p], float) + dodge[name]
        y = np.array([q[1] for q in p], float)
        lo = np.array([np.nan if q[2] is None else q[2] for q in p], float)
        hi = np.array([np.nan if q[3] is None else q[3] for q in p], float)
        err = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0)
        c = colors[name]
        ax.errorbar(x, y, yerr=err, fmt="-", capsize=3, color=c, label=name)
        part = np.array([q[4] for q in p])
        ax.plot(x[~part], y[~part], "o", ms=4, color=c)
        ax.plot(x[part], y[part], "o", ms=6, color=c, mfc="white")
    ax.set_ylabel(axis_label(metric))
    ax.grid(True, alpha=0.3)


def _note(failure: str) -> str:
    if failure == "drop":
        return ("failure: drop \u2013 hollow: some trials failed (mean of the successful ones); "
                "no point: every trial failed (see the outage panel)")
    return "failure: conceal \u2013 every trial scored; hollow: includes concealed failed trials"


def _outage_panel(ax, groups, colors):
    dodge = _dodge(groups, "snr_db")
    for name, pts in groups.items():
        p = [(r["snr_db"], r["outage"], r.get("outage_lo"), r.get("outage_hi")) for r in pts
             if _num(r.get("outage")) is not None]
        if not p:
            continue
        x, y = np.array([q[0] for q in p]) + dodge[name], np.array([q[1] for q in p])
        lo = np.array([q[2] if _num(q[2]) is not None else q[1] for q in p])
        hi = np.array([q[3] if _num(q[3]) is not None else q[1] for q in p])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", ms=4, capsize=3, color=colors[name],
                    label=name)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("outage probability \u2193")
    ax.set_xlabel("SNR [dB]")
    ax.grid(True, alpha=0.3)


def fig3(rows, schemes, metrics, out_dir: Path, title: str, failure: str) -> list[Path]:
    plt, colors, groups, shown_metrics = _start(rows, schemes, metrics)
    paths = []
    for m in shown_metrics:
        fig, ax = plt.subplots(figsize=(5.2, 4.2))
        _metric_panel(ax, groups, colors, m, failure)
        ax.set_xlabel("SNR [dB]")
        ax.set_title(f"{title}: {m.upper()}")
        _legend(ax)
        fig.text(0.01, 0.01, _note(failure), fontsize=5.5)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        paths += save_figure(fig, out_dir, f"fig3_{m}")
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    _outage_panel(ax, groups, colors)
    ax.set_title(f"{title}: outage (failed trials / trials)")
    _legend(ax)
    fig.tight_layout()
    paths += save_figure(fig, out_dir, "outage")
    n = len(shown_metrics) + 1
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    for ax, m in zip(axes[0], shown_metrics):
        _metric_panel(ax, groups, colors, m, failure)
        ax.set_xlabel("SNR [dB]")
    _outage_panel(axes[0][-1], groups, colors)
    _legend(axes[0][0])
    fig.suptitle(title)
    fig.text(0.01, 0.01, _note(failure), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    paths += save_figure(fig, out_dir, "fig3")
    return paths


def _snr_labels(ax, groups, colors, metric, failure) -> None:
    """Label each point of a quality-vs-CBR panel with its SNR ("4 dB"), small, above
    the point and beside it: right for every other scheme, left for the rest (schemes
    at one CBR draw vertical lines side by side, their labels then face away from each
    other; a line along the CBR axis passes under its labels)."""
    for i, (name, pts) in enumerate(groups.items()):
        side = 1 if i % 2 == 0 else -1
        for r in pts:
            y = shown(r, metric, failure)[0]
            x = _num(r.get("cbr"))
            if y is None or x is None:
                continue
            ax.annotate(f"{r['snr_db']:g} dB", (x, y), xytext=(3 * side, 3),
                        textcoords="offset points", ha="left" if side > 0 else "right",
                        va="bottom", fontsize=6, color=colors[name], gid="snr-label")


def quality_vs_cbr(rows, schemes, metrics, out_dir: Path, title: str,
                   failure: str) -> list[Path]:
    """``quality_vs_cbr_<metric>``: metric vs CBR, a line per scheme, each point
    labelled with its SNR; the legend outside the axes."""
    plt, colors, groups, shown_metrics = _start(rows, schemes, metrics)
    paths = []
    for m in shown_metrics:
        fig, ax = plt.subplots(figsize=(6.6, 4.2))
        _metric_panel(ax, groups, colors, m, failure, x_key="cbr")
        _snr_labels(ax, groups, colors, m, failure)
        ax.set_xscale("log")
        _log_x_ticks(ax)
        ax.set_xlabel("CBR (channel uses / 3HWF)")
        ax.set_title(f"{title}: {m.upper()} vs CBR (labels: SNR)")
        _legend(ax, **LEGEND_OUTSIDE)
        fig.text(0.01, 0.01, _note(failure), fontsize=5.5)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        paths += save_figure(fig, out_dir, f"quality_vs_cbr_{m}")
    return paths


def ber_note(schemes, ber_of: dict) -> str:
    """What the BER of a quality-vs-BER figure is, and who is left out and why."""
    kept = [s for s in schemes if ber_of[s].video]
    parts = sorted({ber_of[s].part for s in kept})
    text = f"BER of the video payload ({', '.join(kept)}): {', '.join(parts)}."
    out = [s for s in schemes if not ber_of[s].video]
    if out:
        text += (" Left out, their measured BER is not the video's: "
                 + "; ".join(f"{s}: {ber_of[s].part}" for s in out) + ".")
    return text


def _ber_panel(ax, groups, colors, metric, failure, key) -> None:
    """``metric`` vs the measured BER ``key`` (raw_ber | ber), a line per scheme."""
    for name, pts in groups.items():
        p = [(max(x, 1e-7), y, part) for x, y, _, _, part in _points(pts, metric, failure, key)]
        if not p:
            continue
        x, y = np.array([q[0] for q in p]), np.array([q[1] for q in p])
        part = np.array([q[2] for q in p])
        ax.semilogx(x, y, "-", color=colors[name], label=name)
        ax.plot(x[~part], y[~part], "o", ms=4, color=colors[name])
        ax.plot(x[part], y[part], "o", ms=6, color=colors[name], mfc="white")
    ax.grid(True, which="both", alpha=0.3)


def quality_vs_ber(rows, schemes, metrics, out_dir: Path, title: str, failure: str,
                   ber_of: dict) -> list[Path]:
    """``quality_vs_ber_<metric>``: metric vs the BER before and after decoding, only
    for the schemes whose measured BER is the video's (``ber_of``: {scheme:
    :class:`~lgvsc.sim.schemes.transmission.MeasuredBER`}); nothing when none is."""
    kept = [s for s in schemes if ber_of[s].video]
    if not kept:
        return []
    plt, colors, groups, _ = _start(rows, schemes, metrics)
    groups = {s: groups[s] for s in kept}
    shown_metrics = _start([r for r in rows if r["scheme"] in kept], kept, metrics)[3]
    note = textwrap.fill(ber_note(schemes, ber_of) + " " + _note(failure), 190)
    paths = []
    for m in shown_metrics:
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.4), sharey=True)
        for ax, key, label in ((axes[0], "raw_ber", "channel BER before decoding"),
                               (axes[1], "ber", "payload BER after decoding")):
            _ber_panel(ax, groups, colors, m, failure, key)
            ax.set_xlabel(f"{label} (0 drawn at 1e-7)")
        axes[0].set_ylabel(axis_label(m))
        _legend(axes[1], **LEGEND_OUTSIDE)
        fig.suptitle(f"{title}: {m.upper()} vs the measured BER of the video payload")
        fig.text(0.01, 0.01, note, fontsize=6, va="bottom")
        fig.tight_layout(rect=(0, 0.03 + 0.025 * note.count("\n"), 1, 1))
        paths += save_figure(fig, out_dir, f"quality_vs_ber_{m}")
    return paths


def _outage_text(r) -> str:
    return f"{int(r['failed_trials'])}/{int(r['trials'])}"


def _markdown(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c or DASH for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def cbr_table(rows, schemes, out_dir: Path) -> list[Path]:
    """Table II layout: SNR rows x scheme columns; "–" where every trial failed."""
    snrs = sorted({r["snr_db"] for r in rows})
    cell = {}
    for r in rows:
        v = _num(r.get("cbr"))
        if v is None or r["failed_trials"] >= r["trials"]:
            txt = ""
        else:
            txt = f"{v:.3g}" + (f" (outage {_outage_text(r)})" if r["failed_trials"] else "")
        cell[(r["snr_db"], r["scheme"])] = txt
    header = ["SNR (dB)"] + list(schemes)
    body = [[f"{s:g}"] + [cell.get((s, name), "") for name in schemes] for s in snrs]
    csv_path, md_path = out_dir.parent / "cbr_table.csv", out_dir.parent / "cbr_table.md"
    with atomic_write(csv_path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header] + [[c or DASH for c in row] for row in body])
    write_text(md_path, _markdown(header, body) + f"\n{DASH}: every trial failed "
               "(transmission failure, the paper's convention).\n")
    return [csv_path, md_path]


def _estimate_text(v, lo, hi) -> str:
    if v is None:
        return ""
    if _num(lo) is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def quality_table(rows, schemes, metrics, out_dir: Path, failure: str) -> list[Path]:
    """Markdown: CBR, outage and each metric (with its interval) per scheme and SNR."""
    kf = any(_num(r.get("keyframe_cbr")) is not None for r in rows)
    cols = (["scheme", "SNR (dB)", "CBR"] + (["CBR / keyframe"] if kf else [])
            + ["outage (failed/trials)", "videos x trials scored"]
            + [axis_label(m) for m in metrics])
    body = []
    for name in schemes:
        for r in sorted((r for r in rows if r["scheme"] == name), key=lambda r: r["snr_db"]):
            scored = (f"{int(r['videos_ok'])} x {int(r['trials_ok'])}" if failure == "drop"
                      else f"{int(r['videos'])} x {int(r['trials'])}")
            out = [name, f"{r['snr_db']:g}", f"{r['cbr']:.3g}" if _num(r.get("cbr")) else ""]
            if kf:
                out.append(f"{r['keyframe_cbr']:.3g}" if _num(r.get("keyframe_cbr")) else "")
            out += [f"{r['outage']:.2f} ({_outage_text(r)})", scored]
            out += [_estimate_text(*shown(r, m, failure)[:3]) for m in metrics]
            body.append(out)
    note = (f"\nQuality under `failure: {failure}`: "
            + ("mean of the trials that succeeded (failed trials dropped); "
               if failure == "drop" else "every trial scored, failed ones as concealed; ")
            + f"{DASH}: no trial to score. Intervals (in brackets) are over per-video means "
            "(over trials when one video); see summary.csv for both quality columns.\n")
    return [write_text(out_dir.parent / "quality_table.md", _markdown(cols, body) + note)]


def measured_ber(sc) -> dict:
    """{scheme name: what its measured BER is of} (each scheme class's
    :attr:`~lgvsc.sim.schemes.transmission.VideoScheme.measured_ber`)."""
    return {e["name"]: SCHEMES.get(e["type"]).measured_ber for e in sc.schemes}


def video_figures(rows, sc, out_dir: Path) -> list[Path]:
    """Every figure and table of a video scenario ``sc``; returns the paths written."""
    schemes = [e["name"] for e in sc.schemes]
    return (fig3(rows, schemes, sc.metrics, out_dir, sc.name, sc.failure)
            + quality_vs_cbr(rows, schemes, sc.metrics, out_dir, sc.name, sc.failure)
            + quality_vs_ber(rows, schemes, sc.metrics, out_dir, sc.name, sc.failure,
                             measured_ber(sc))
            + cbr_table(rows, schemes, out_dir)
            + quality_table(rows, schemes, sc.metrics, out_dir, sc.failure))
