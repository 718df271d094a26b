"""Plots from ``summary.csv`` (+ the stored scenario), PNG and PDF under
``<results>/plots/``: BER / BLER vs SNR with dense theory curves for link
scenarios; the video figures of :mod:`lgvsc.sim.figures` for video ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import save_figure, video_figures
from .outputs import safe_dir
from .summary import read_summary, scheme_objects


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rate_panel(ax, rows, key, schemes, channel, colors):
    snrs = [r["snr_db"] for r in rows]
    grid = np.arange(min(snrs) - 1.0, max(snrs) + 1.0001, 0.25)
    for name, color in colors.items():
        # points skipped by an early stop have no measured value: not drawn (never as 0)
        pts = [r for r in rows if r["scheme"] == name and r[key] is not None]
        if not pts:
            continue
        x = np.array([r["snr_db"] for r in pts])
        y = np.array([r[key] for r in pts], dtype=float)
        lo = np.array([r[f"{key}_lo"] for r in pts], dtype=float)
        hi = np.array([r[f"{key}_hi"] for r in pts], dtype=float)
        ok = y > 0
        ax.errorbar(x[ok], y[ok], yerr=[y[ok] - lo[ok], hi[ok] - y[ok]], fmt="o-", color=color,
                    capsize=3, ms=4, label=name)
        if (~ok).any():  # no errors seen: show the upper 95% bound
            ax.plot(x[~ok], hi[~ok], "v", color=color, mfc="none", ms=6,
                    label=f"{name}: 0 errors (95% upper bound)")
        theo = schemes[name].theory(grid, channel)[key]
        if theo is not None:
            ax.plot(grid, theo, "--", color=color, lw=1, alpha=0.8, label=f"{name}: {schemes[name].theory_labels[key]}")
        lim = schemes[name].shannon_limit_db()
        if lim is not None and key == "bler":
            ax.axvline(lim, color=color, ls=":", lw=1, label=f"{name}: Shannon limit {lim:.2f} dB")
    ax.set_yscale("log")
    ax.set_xlabel("SNR  Es/N0 per complex channel use [dB]")
    ax.set_ylabel(key.upper())
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(bottom=max(1e-7, ax.get_ylim()[0]), top=1.05)
    ax.legend(fontsize=7)


def plot_results(results_dir: str | Path, sc) -> list[Path]:
    """Plots of the :class:`~lgvsc.sim.scenario.Scenario` ``sc`` from its summary.csv
    (link: ber/bler; video: :func:`~lgvsc.sim.figures.video_figures`); returns the paths."""
    results_dir = Path(results_dir)
    rows = read_summary(results_dir / "summary.csv")
    out_dir = safe_dir(results_dir / "plots")  # never a link out of the folder
    if not rows:
        return []
    if sc.kind == "video":
        return video_figures(rows, sc, out_dir)
    plt = _setup()
    schemes = scheme_objects(sc)
    cmap = plt.get_cmap("tab10")
    colors = {e["name"]: cmap(i % 10) for i, e in enumerate(sc.schemes)}
    written = []
    for key in ("ber", "bler"):
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        _rate_panel(ax, rows, key, schemes, sc.channel.type, colors)
        ax.set_title(f"{sc.name}: {key.upper()} on {sc.channel.type}")
        fig.tight_layout()
        written += save_figure(fig, out_dir, key)
    return written
