"""Plots from ``summary.csv`` (+ the stored scenario), PNG and PDF under
``<results>/plots/``: BER / BLER vs SNR with dense theory curves for link
scenarios; the video figures of :mod:`lgvsc.sim.figures` for video ones.

Link figures (``ber``, ``bler``) have one panel per modulation (a modulation with
more than :data:`MAX_PER_PANEL` schemes gets several), one above the other, each
with its legend outside the axes on the right: one entry per scheme (its colour)
and a key to the line styles (theory curves, the zero-error bound, the capacity
limit). BLER panels draw each coded scheme's capacity limit on the plotted
channel (:meth:`~lgvsc.sim.schemes.link.LinkScheme.capacity_limit`): the
channel's own (AWGN, ergodic i.i.d. Rayleigh) or, where it has none here, the
AWGN limit drawn sparser and labelled as a reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..link.channels import make_channel
from ..link.modem import MODULATIONS
from .figures import save_figure, video_figures
from .outputs import safe_dir
from .summary import read_summary, scheme_objects

#: most schemes in one panel (plus at most four style keys: a legend of <= 12 entries)
MAX_PER_PANEL = 8
#: line styles of the theory curves, one per distinct legend text (``theory_labels``)
THEORY_STYLES = ("--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))
#: line style of a capacity limit: the channel's own, a reference from another channel
LIMIT_STYLES = {True: ":", False: (0, (1, 4))}
#: where a panel's legend goes: outside the axes, right of them
LEGEND_OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def modulation_label(name: str) -> str:
    """Display name of a modulation: ``BPSK``, ``QPSK``, ``16-QAM``, ..."""
    kind, m = MODULATIONS[name]
    if kind == "pam" and m == 1:
        return "BPSK"
    return "QPSK" if m == 2 else f"{2 ** m}-QAM"


def panel_groups(schemes: dict) -> list[tuple[str, list[str]]]:
    """[(panel title, scheme names)]: the link schemes ``schemes`` ({name: scheme}, in
    scenario order) grouped by modulation, in order of first appearance; a group of
    more than :data:`MAX_PER_PANEL` is cut into consecutive panels ("QPSK (1/2)")."""
    by_mod: dict[str, list[str]] = {}
    for name, scheme in schemes.items():
        by_mod.setdefault(scheme.modulation(), []).append(name)
    out = []
    for mod, names in by_mod.items():
        chunks = [names[i:i + MAX_PER_PANEL] for i in range(0, len(names), MAX_PER_PANEL)]
        for j, chunk in enumerate(chunks):
            part = f" ({j + 1}/{len(chunks)})" if len(chunks) > 1 else ""
            out.append((modulation_label(mod) + part, chunk))
    return out


def theory_styles(schemes: dict, key: str) -> dict[str, object]:
    """{theory legend text: line style} over every scheme of the figure, so that a
    text has one style in all its panels."""
    labels = []
    for scheme in schemes.values():
        text = scheme.theory_labels[key]
        if text and text not in labels:
            labels.append(text)
    return {t: THEORY_STYLES[i % len(THEORY_STYLES)] for i, t in enumerate(labels)}


def _key(plt_lines, label: str, **style):
    """A legend-only handle (drawn nowhere) for a style key or a scheme's colour."""
    return plt_lines.Line2D([], [], label=label, **style)


def _measured(ax, pts, key, name, color, confidence) -> bool:
    """Draw a scheme's measured points (with their interval) and, where no error was
    seen, the upper bound; True when an upper-bound marker was drawn."""
    x = np.array([r["snr_db"] for r in pts])
    y = np.array([r[key] for r in pts], dtype=float)
    lo = np.array([r[f"{key}_lo"] for r in pts], dtype=float)
    hi = np.array([r[f"{key}_hi"] for r in pts], dtype=float)
    ok = y > 0
    ax.errorbar(x[ok], y[ok], yerr=[y[ok] - lo[ok], hi[ok] - y[ok]], fmt="o-", color=color,
                capsize=3, ms=4, label=name)
    if (~ok).any():  # no errors seen: show the upper bound of the interval
        ax.plot(x[~ok], hi[~ok], "v", color=color, mfc="none", ms=6,
                label=f"{name}: 0 errors ({confidence * 100:g}% upper bound)")
    return bool((~ok).any())


def _limit_lines(ax, limits: dict, colors: dict) -> list:
    """Vertical lines of the capacity limits of the schemes in ``colors``, their value
    written once per distinct value at the bottom, left of the line (where a BLER curve
    seldom is); the limits drawn."""
    drawn, at = [], {}
    for name, color in colors.items():
        lim = limits.get(name)
        if lim is None:
            continue
        ax.axvline(lim.snr_db, color=color, ls=LIMIT_STYLES[lim.own], lw=1,
                   label=f"{name}: {lim.label} {lim.snr_db:.2f} dB")
        at.setdefault(round(lim.snr_db, 2), []).append(color)
        drawn.append(lim)
    for value, cols in at.items():
        ax.text(value, 0.02, f"{value:.2f} dB", transform=ax.get_xaxis_transform(),
                rotation=90, ha="right", va="bottom", fontsize=6,
                color=cols[0] if len(cols) == 1 else "0.3")
    return drawn


def _rate_panel(ax, rows, key, schemes, channel, colors, limits=None, confidence=0.95):
    """One panel of ``key`` (ber | bler) vs SNR for the schemes in ``colors`` ({name:
    colour}): measured points with intervals, the zero-error bounds, the theory curves
    on ``channel`` (a channel type), the capacity ``limits`` ({name:
    :class:`~lgvsc.sim.schemes.link.CapacityLimit`}); its legend outside, right."""
    from matplotlib import lines

    snrs = [r["snr_db"] for r in rows]
    grid = np.arange(min(snrs) - 1.0, max(snrs) + 1.0001, 0.25)
    styles = theory_styles(schemes, key)
    handles, bound, theories = [], False, []
    for name, color in colors.items():
        handles.append(_key(lines, name, color=color, marker="o", ms=4))
        # points skipped by an early stop have no measured value: not drawn (never as 0)
        pts = [r for r in rows if r["scheme"] == name and r[key] is not None]
        if pts:
            bound |= _measured(ax, pts, key, name, color, confidence)
        theo = schemes[name].theory(grid, channel)[key]
        if theo is not None:
            text = schemes[name].theory_labels[key]
            ax.plot(grid, theo, ls=styles[text], color=color, lw=1, alpha=0.8,
                    label=f"{name}: {text}")
            if text not in theories:
                theories.append(text)
    if bound:
        handles.append(_key(lines, f"no errors seen: {confidence * 100:g}% upper bound",
                            color="0.4", marker="v", mfc="none", ls="none", ms=6))
    handles += [_key(lines, f"theory: {t}", color="0.4", ls=styles[t], lw=1) for t in theories]
    shown = {(lim.label, lim.own): lim for lim in _limit_lines(ax, limits or {}, colors)}
    handles += [_key(lines, f"{label}, dB at bottom", color="0.4", ls=LIMIT_STYLES[own], lw=1)
                for (label, own) in shown]
    ax.set_yscale("log")
    ax.set_xlabel("SNR  Es/N0 per complex channel use [dB]")
    ax.set_ylabel(key.upper())
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(bottom=max(1e-7, ax.get_ylim()[0]), top=1.05)
    ax.legend(handles=handles, fontsize=7, **LEGEND_OUTSIDE)


def channel_text(sc) -> str:
    """The channel as a title says it: ``rayleigh (coherence 1)``."""
    params = ", ".join(f"{k} {v}" for k, v in sc.channel.params().items())
    return sc.channel.type + (f" ({params})" if params else "")


def rate_figure(plt, rows, key: str, sc, schemes: dict):
    """The ``key`` (ber | bler) figure: one panel per :func:`panel_groups` group,
    stacked, colours per panel; BLER panels with the capacity limits."""
    groups = panel_groups(schemes)
    limits = {}
    if key == "bler":
        channel = make_channel(sc.channel.type, **sc.channel.params())
        limits = {name: s.capacity_limit(channel) for name, s in schemes.items()}
    fig, axes = plt.subplots(len(groups), 1, figsize=(9.0, 0.7 + 3.2 * len(groups)),
                             squeeze=False, sharex=True, layout="constrained")
    cmap = plt.get_cmap("tab10")
    for i, (ax, (title, names)) in enumerate(zip(axes[:, 0], groups)):
        colors = {n: cmap(j % 10) for j, n in enumerate(names)}
        _rate_panel(ax, rows, key, schemes, sc.channel.type, colors, limits,
                    sc.statistics.confidence)
        ax.set_title(title, fontsize=9, loc="left")
        if i < len(groups) - 1:
            ax.set_xlabel("")
    fig.suptitle(f"{sc.name}: {key.upper()} on {channel_text(sc)}")
    return fig


def plot_results(results_dir: str | Path, sc) -> list[Path]:
    """Plots of the :class:`~lgvsc.sim.scenario.Scenario` ``sc`` from its summary.csv
    (link: ``ber`` and ``bler``, :func:`rate_figure`; video:
    :func:`~lgvsc.sim.figures.video_figures`); returns every path written."""
    results_dir = Path(results_dir)
    rows = read_summary(results_dir / "summary.csv")
    out_dir = safe_dir(results_dir / "plots")  # never a link out of the folder
    if not rows:
        return []
    if sc.kind == "video":
        return video_figures(rows, sc, out_dir)
    plt = _setup()
    schemes = scheme_objects(sc)
    written = []
    for key in ("ber", "bler"):
        written += save_figure(rate_figure(plt, rows, key, sc, schemes), out_dir, key)
    return written
