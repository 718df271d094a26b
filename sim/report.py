"""What the CLI prints about a results folder: the end-of-run table and paired
comparisons (``lgvsc compare``). Both read the store through the same summary
schema as the plots."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .errors import UserError
from .figures import DASH
from .runner import STORE_NAME, stored_results
from .scenario import Scenario
from .stats import paired_difference
from .summary import read_summary, shown

def _grid(title: str, schemes: list[str], snrs: list[float], cell) -> list[str]:
    width = max([len(s) for s in schemes] + [6])
    head = f"  {'':<{width}}" + "".join(f"{f'{s:g} dB':>10}" for s in snrs)
    lines = [title, head]
    for name in schemes:
        lines.append(f"  {name:<{width}}" + "".join(f"{cell(name, s):>10}" for s in snrs))
    return lines


def run_table(out: Path, sc: Scenario) -> str:
    """A short table of the run of ``sc`` in ``out``: quality, outage and CBR per
    scheme x SNR (video), or BER / BLER (link), from its summary.csv, and where
    every output is."""
    rows = read_summary(out / "summary.csv") if (out / "summary.csv").exists() else []
    by = {(r["scheme"], r["snr_db"]): r for r in rows}
    schemes = [e["name"] for e in sc.schemes if any(r["scheme"] == e["name"] for r in rows)]
    snrs = sorted({r["snr_db"] for r in rows})
    lines: list[str] = []
    if sc.kind == "video" and rows:
        m = sc.metrics[0]

        def quality(name, s):
            r = by.get((name, s))
            if r is None:
                return ""
            v, *_, partial = shown(r, m, sc.failure)
            return DASH if v is None else f"{v:.3g}" + ("*" if partial else "")

        def outage(name, s):
            r = by.get((name, s))
            return "" if r is None else f"{r['outage']:.2f}"

        def cbr(name, s):
            r = by.get((name, s))
            return "" if r is None or r.get("cbr") is None else f"{r['cbr']:.2e}"

        lines += _grid(f"{m.upper()} (failure: {sc.failure}; {DASH} every trial failed, "
                       "* some failed)", schemes, snrs, quality)
        lines += _grid("outage (failed trials / trials)", schemes, snrs, outage)
        lines += _grid("CBR (channel uses / 3HWF)", schemes, snrs, cbr)
    elif rows:
        def rate(key):
            def cell(name, s):
                r = by.get((name, s))
                v = None if r is None else r.get(key)
                return "" if v is None else f"{v:.2e}"
            return cell

        lines += _grid("BER", schemes, snrs, rate("ber"))
        lines += _grid("BLER", schemes, snrs, rate("bler"))
    plots = sorted(p.name for p in (out / "plots").glob("*.png")) if (out / "plots").exists() else []
    lines.append(f"results in {out}/: {STORE_NAME} (the store), summary.csv, timings.csv"
                 + (", quality_table.md, cbr_table.md/.csv" if sc.kind == "video" else ""))
    lines.append(f"plots in {out}/plots/ (png + pdf): {', '.join(plots)}")
    if (out / "media" / "index.json").exists():
        lines.append(f"saved frames and videos in {out}/media/ (listed in media/index.json)")
    if (out / "report.html").exists():
        lines.append(f"open {out}/report.html in a browser: every table, plot and saved video")
    return "\n".join(lines)


def compare(out: Path, a: str, b: str, metric: str | None = None) -> str:
    """Paired comparison of schemes ``a`` and ``b`` of a video results folder:
    per SNR, the mean over videos of the per-video difference of means (a - b),
    its interval over videos, and in how many videos ``a`` scored higher."""
    sc, rows = stored_results(out)
    if sc.kind != "video":
        raise UserError(f"{out}: compare needs a video results folder (this one is {sc.kind})")
    names = [e["name"] for e in sc.schemes]
    for s in (a, b):
        if s not in names:
            raise UserError(f"{out}: no scheme {s!r}; schemes: {', '.join(names)}")
    metric = metric or sc.metrics[0]
    if metric not in sc.metrics:
        raise UserError(f"{out}: no metric {metric!r}; metrics: {', '.join(sc.metrics)}")
    conf, method = sc.statistics.confidence, sc.statistics.interval
    data = defaultdict(lambda: defaultdict(list))
    fails = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["scheme"] not in (a, b):
            continue
        key = (r["scheme"], float(r["snr_db"]))
        fails[key][0] += int(bool(r["failed"]))
        fails[key][1] += 1
        if sc.failure == "conceal" or not r["failed"]:
            data[key][r["video"]].append(r["metrics"].get(metric))
    snrs = sorted({s for (_, s) in fails})
    lines = [f"{a} - {b}: {metric.upper()} difference (failure: {sc.failure}; per-video means, "
             f"{conf:.0%} interval over videos, over trials when one video)",
             f"  {'SNR':>7} {'diff':>9} {'interval':>21} {'over':>12} {'a wins':>7} "
             f"{'outage a':>9} {'outage b':>9}"]
    for s in snrs:
        est, wins = paired_difference(data[(a, s)], data[(b, s)], conf, method)
        fa, fb = fails[(a, s)], fails[(b, s)]
        oa = f"{fa[0]}/{fa[1]}" if fa[1] else ""
        ob = f"{fb[0]}/{fb[1]}" if fb[1] else ""
        if math.isnan(est.mean):
            lines.append(f"  {s:>7g} {DASH:>9} {'(no video scored by both)':>21} {'':>12} "
                         f"{'':>7} {oa:>9} {ob:>9}")
            continue
        ci = "" if math.isnan(est.lo) else f"[{est.lo:.3g}, {est.hi:.3g}]"
        over = f"{est.videos} videos" if est.over == "videos" else f"{est.trials} trials"
        lines.append(f"  {s:>7g} {est.mean:>9.3g} {ci:>21} {over:>12} "
                     f"{f'{wins}/{est.videos}':>7} {oa:>9} {ob:>9}")
    return "\n".join(lines)
