"""Figures made from saved media and per-frame metrics (video runs), PNG + PDF under
``<results>/plots/``:

* ``fig1_<video>`` -- the paper's Fig. 1 layout: the original frame and one column
  per saved scheme, one row per SNR (:func:`~lgvsc.sim.media.figure_snrs`), from
  trial ``save.trials[0]``; under each tile the frame index, the trial's CBR and
  the frame's metrics. Each tile is the PNG saved under ``media/`` (never a frame
  made again here); a failed trial is drawn with a red frame and says why; a tile
  whose unit was not run or whose file is missing says so.
* ``temporal_<video>_<snr>dB`` -- per-frame quality over the clip at each figure
  SNR, one line per scheme (the mean over the trials the scenario's ``failure``
  policy scores), keyframes marked on the schemes that send them.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .figures import save_figure
from .media import (figure_snrs, frame_path, original_frame_path, read_png, resolve_frame,
                    saved_schemes, slug)
from .metrics import METRICS, axis_label
from .outputs import safe_dir

FAILED_COLOR = "#d62728"


@dataclass(frozen=True)
class Tile:
    """One cell of a Fig. 1 grid: the image file (relative to the results folder;
    None: nothing to show), its column title and the lines under it."""

    path: str | None
    title: str
    caption: str
    failed: bool = False


def _value(name: str, v: float) -> str:
    unit = METRICS.get(name).unit
    return f"{name.upper()} {v:.3g}" + (f" {unit}" if unit else "")


def _caption(row: dict, frame: int, metrics: list[str]) -> str:
    extra = row.get("extra") or {}
    per = extra.get("frame_metrics") or {}
    cbr = (row.get("metrics") or {}).get("cbr")
    lines = [f"frame {frame}" + (f" \u00b7 CBR {cbr:.2e}" if cbr is not None else "")]
    vals = [_value(m, per[m][frame]) for m in metrics if m in per and frame < len(per[m])]
    lines += [" \u00b7 ".join(vals[i:i + 2]) for i in range(0, len(vals), 2)]
    if row.get("failed"):
        why = (row.get("failure") or "").split(";")[0]
        why = why[:72] + "\u2026" if len(why) > 72 else why
        lines += textwrap.wrap("FAILED: " + why, 30)  # within the tile's width
    return "\n".join(lines)


def fig1_tiles(out: Path, sc, rows: list[dict], label: str) -> tuple[list[float], list[list[Tile]]]:
    """(SNRs, tiles by SNR row: original first, then each saved scheme) of video
    ``label``'s Fig. 1 from the stored ``rows``."""
    mine = [r for r in rows if r["video"] == label]
    count = int((mine[0].get("extra") or {})["frames"])
    frame = resolve_frame(sc.save.figure.frame, count)
    trial = sc.save.trials[0]
    by = {(r["scheme"], float(r["snr_db"])): r for r in mine if int(r["trial"]) == trial}
    orig = original_frame_path(label, frame)
    snrs = figure_snrs(sc)
    grid = []
    for snr in snrs:
        cells = [Tile(orig if (out / orig).is_file() else None, "original",
                      f"frame {frame}" if (out / orig).is_file() else "original not saved")]
        for name in saved_schemes(sc):
            row = by.get((name, snr))
            if row is None:
                cells.append(Tile(None, name, "not run"))
                continue
            p = frame_path(label, name, snr, trial, frame)
            have = (out / p).is_file()
            text = _caption(row, frame, sc.metrics) if have else "frame not saved\n(lgvsc media)"
            cells.append(Tile(p if have else None, name, text, bool(row.get("failed"))))
        grid.append(cells)
    return snrs, grid


def _draw_tile(ax, out: Path, tile: Tile, shape) -> None:
    img = read_png(out / tile.path) if tile.path else np.full(shape, 235, np.uint8)
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    color = FAILED_COLOR if tile.failed else "0.6"
    for side in ax.spines.values():
        side.set_edgecolor(color)
        side.set_linewidth(3.0 if tile.failed else 0.5)
    if tile.failed:
        ax.text(0.5, 0.5, "FAILED", transform=ax.transAxes, ha="center", va="center",
                color="white", fontsize=9, fontweight="bold",
                bbox=dict(facecolor=FAILED_COLOR, alpha=0.8, edgecolor="none"))
    ax.set_xlabel(tile.caption, fontsize=6, color=FAILED_COLOR if tile.failed else "black")


def fig1(out: Path, sc, rows: list[dict], label: str) -> list[Path]:
    """Write ``plots/fig1_<video>``; nothing when no tile has an image."""
    from .figures import _plt

    snrs, grid = fig1_tiles(out, sc, rows, label)
    shown = [t for cells in grid for t in cells if t.path]
    if not shown:
        return []
    shape = read_png(out / shown[0].path).shape
    h, w = shape[:2]
    cols = len(grid[0])
    tile_w = 1.9
    tile_h = tile_w * h / w + 0.75  # room for the caption
    plt = _plt()
    fig, axes = plt.subplots(len(grid), cols, figsize=(tile_w * cols + 0.6, tile_h * len(grid) + 0.5),
                             squeeze=False)
    for r, (snr, cells) in enumerate(zip(snrs, grid)):
        for c, tile in enumerate(cells):
            ax = axes[r][c]
            _draw_tile(ax, out, tile, shape)
            if r == 0:
                ax.set_title(tile.title, fontsize=7)
        axes[r][0].set_ylabel(f"{snr:g} dB", fontsize=9)
    fig.suptitle(f"{label}: frame {resolve_frame(sc.save.figure.frame, _count(rows, label))}, "
                 f"trial {sc.save.trials[0]} (Es/N0 per row)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, safe_dir(out / "plots"), f"fig1_{slug(label)}")


def _count(rows: list[dict], label: str) -> int:
    return int(next(r for r in rows if r["video"] == label)["extra"]["frames"])


def _scored(rows: list[dict], failure: str) -> list[dict]:
    return [r for r in rows if failure == "conceal" or not r.get("failed")]


def temporal(out: Path, sc, rows: list[dict], label: str, snr: float) -> list[Path]:
    """Write ``plots/temporal_<video>_<snr>dB``: each metric over the frames."""
    from .figures import _plt

    mine = [r for r in rows if r["video"] == label and float(r["snr_db"]) == snr]
    metrics = [m for m in sc.metrics
               if any(m in ((r.get("extra") or {}).get("frame_metrics") or {}) for r in mine)]
    if not mine or not metrics:
        return []
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    names = [e["name"] for e in sc.schemes]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8.0, 2.4 * len(metrics) + 0.8),
                             sharex=True, squeeze=False)
    for i, name in enumerate(names):
        unit_rows = [r for r in mine if r["scheme"] == name]
        if not unit_rows:
            continue
        kept = _scored(unit_rows, sc.failure)
        color = cmap(i % 10)
        keys = next(((r.get("extra") or {}).get("keyframes") for r in unit_rows
                     if (r.get("extra") or {}).get("keyframes")), None)
        for ax, m in zip(axes[:, 0], metrics):
            if not kept:
                ax.plot([], [], color=color, label=f"{name} (every trial failed)")
                continue
            y = np.mean([r["extra"]["frame_metrics"][m] for r in kept], axis=0)
            n = f" ({len(kept)} of {len(unit_rows)} trials)" if len(kept) < len(unit_rows) else ""
            ax.plot(np.arange(len(y)), y, color=color, lw=1, label=name + n)
            if keys:
                k = np.array(keys, int)
                ax.plot(k, y[k], "v", color=color, ms=5, mfc="white")
    for ax, m in zip(axes[:, 0], metrics):
        ax.set_ylabel(axis_label(m), fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("frame  (\u25bd keyframe)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    policy = "failed trials left out" if sc.failure == "drop" else "failed trials concealed"
    fig.suptitle(f"{label} at {snr:g} dB: per-frame quality, mean over trials ({policy})",
                 fontsize=9, y=0.02, va="bottom")
    rows_of_legend = -(-len(labels) // 4)
    fig.tight_layout(rect=(0, 0.04, 1, 1 - 0.045 * rows_of_legend))
    return save_figure(fig, safe_dir(out / "plots"), f"temporal_{slug(label)}_{snr:g}dB")


def media_figures(out: Path, sc, rows: list[dict]) -> list[Path]:
    """Every Fig. 1 grid and temporal plot of the stored ``rows``."""
    out = Path(out)
    written = []
    for spec in sc.videos:
        label = spec.label()
        if not any(r["video"] == label for r in rows):
            continue
        written += fig1(out, sc, rows, label)
        for snr in figure_snrs(sc):
            written += temporal(out, sc, rows, label, snr)
    return written
