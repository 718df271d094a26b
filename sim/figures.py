"""Video-scenario figures and tables, all from ``summary.csv``.

* ``fig3_<metric>`` -- metric vs SNR, one line per scheme, 95% CI bars
  (the layout of the paper's Fig. 3), and ``fig3`` with every metric as a panel.
* ``cbr_table.csv`` / ``cbr_table.md`` -- CBR per SNR (rows) and scheme
  (columns), Table II's layout; a cell is marked "(failed)" when every trial
  of it had residual block errors in its digital payload.
* ``quality_vs_cbr_<metric>`` -- metric vs CBR.
* ``quality_vs_ber_<metric>`` -- metric vs the digital pipe's measured BER,
  before (channel hard decisions) and after decoding.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

LOWER_IS_BETTER = {"lpips", "dists"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``, close the figure."""
    import matplotlib.pyplot as plt

    paths = []
    for ext in ("png", "pdf"):
        p = out_dir / f"{stem}.{ext}"
        fig.savefig(p, dpi=150)
        paths.append(p)
    plt.close(fig)
    return paths


def _start(rows, schemes, metrics):
    """(pyplot, scheme colours, rows by scheme, metrics that have values)."""
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    colors = {s: cmap(i % 10) for i, s in enumerate(schemes)}
    shown = [m for m in metrics if any(r.get(m) is not None for r in rows)]
    return plt, colors, _by_scheme(rows, schemes), shown


def _by_scheme(rows, schemes):
    return {s: [r for r in rows if r["scheme"] == s] for s in schemes}


def _metric_panel(ax, groups, colors, metric, x_key="snr_db"):
    for name, pts in groups.items():
        pts = [r for r in pts if r.get(metric) is not None]
        if not pts:
            continue
        x = np.array([r[x_key] for r in pts], float)
        y = np.array([r[metric] for r in pts], float)
        lo = np.array([r.get(f"{metric}_lo") if r.get(f"{metric}_lo") is not None else np.nan
                       for r in pts], float)
        hi = np.array([r.get(f"{metric}_hi") if r.get(f"{metric}_hi") is not None else np.nan
                       for r in pts], float)
        err = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0)
        ax.errorbar(x, y, yerr=err, fmt="o-", ms=4, capsize=3, color=colors[name], label=name)
    arrow = "\u2193" if metric in LOWER_IS_BETTER else "\u2191"
    ax.set_ylabel(f"{metric.upper()} {arrow}")
    ax.grid(True, alpha=0.3)


def fig3(rows, schemes, metrics, out_dir: Path, title: str) -> list[Path]:
    plt, colors, groups, shown = _start(rows, schemes, metrics)
    paths = []
    for m in shown:
        fig, ax = plt.subplots(figsize=(5.2, 4))
        _metric_panel(ax, groups, colors, m)
        ax.set_xlabel("SNR [dB]")
        ax.set_title(f"{title}: {m.upper()}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths += save_figure(fig, out_dir, f"fig3_{m}")
    if shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8), squeeze=False)
        for ax, m in zip(axes[0], shown):
            _metric_panel(ax, groups, colors, m)
            ax.set_xlabel("SNR [dB]")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
        paths += save_figure(fig, out_dir, "fig3")
    return paths


def quality_vs(rows, schemes, metrics, out_dir: Path, title: str) -> list[Path]:
    plt, colors, groups, shown = _start(rows, schemes, metrics)
    paths = []
    for m in shown:
        fig, ax = plt.subplots(figsize=(5.2, 4))
        _metric_panel(ax, groups, colors, m, x_key="cbr")
        ax.set_xscale("log")
        ax.set_xlabel("CBR (channel uses / 3HWF)")
        ax.set_title(f"{title}: {m.upper()} vs CBR")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths += save_figure(fig, out_dir, f"quality_vs_cbr_{m}")
        digital = {s: [r for r in pts if (r.get("raw_ber") or 0) > 0 or (r.get("ber") is not None)]
                   for s, pts in groups.items()}
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), sharey=True)
        for ax, key, label in ((axes[0], "raw_ber", "channel BER before decoding"),
                               (axes[1], "ber", "payload BER after decoding")):
            for name, pts in digital.items():
                pts = [r for r in pts if r.get(key) is not None and r.get(m) is not None]
                if not pts:
                    continue
                x = np.array([max(r[key], 1e-7) for r in pts])
                ax.semilogx(x, [r[m] for r in pts], "o-", ms=4, color=colors[name], label=name)
            ax.set_xlabel(f"{label} (0 drawn at 1e-7)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel(m.upper())
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{title}: {m.upper()} vs measured BER")
        fig.tight_layout()
        paths += save_figure(fig, out_dir, f"quality_vs_ber_{m}")
    return paths


def cbr_table(rows, schemes, out_dir: Path) -> list[Path]:
    """Table II layout: SNR rows x scheme columns."""
    snrs = sorted({r["snr_db"] for r in rows})
    cell = {}
    for r in rows:
        v = r.get("cbr")
        txt = "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"
        if txt and r.get("failed_trials") and r["failed_trials"] >= r["n"]:
            txt += " (failed)"
        cell[(r["snr_db"], r["scheme"])] = txt
    header = ["SNR (dB)"] + list(schemes)
    body = [[f"{s:g}"] + [cell.get((s, name), "") for name in schemes] for s in snrs]
    csv_path, md_path = out_dir.parent / "cbr_table.csv", out_dir.parent / "cbr_table.md"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows([header] + body)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c or "\u2013" for c in row) + " |" for row in body]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]


def quality_table(rows, schemes, metrics, out_dir: Path) -> list[Path]:
    """Markdown table: mean of each metric and the CBR per scheme and SNR."""
    cols = ["scheme", "SNR (dB)", "CBR"] + [m.upper() for m in metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name in schemes:
        for r in sorted((r for r in rows if r["scheme"] == name), key=lambda r: r["snr_db"]):
            vals = [r.get(m) for m in ["cbr", *metrics]]
            fmt = ["\u2013" if v is None else (f"{v:.3g}" if i == 0 else f"{v:.3f}")
                   for i, v in enumerate(vals)]
            lines.append("| " + " | ".join([name, f"{r['snr_db']:g}"] + fmt) + " |")
    p = out_dir.parent / "quality_table.md"
    p.write_text("\n".join(lines) + "\n")
    return [p]


def video_figures(rows, sc, out_dir: Path) -> list[Path]:
    schemes = [e["name"] for e in sc.schemes]
    return (fig3(rows, schemes, sc.metrics, out_dir, sc.name)
            + quality_vs(rows, schemes, sc.metrics, out_dir, sc.name)
            + cbr_table(rows, schemes, out_dir) + quality_table(rows, schemes, sc.metrics, out_dir))
