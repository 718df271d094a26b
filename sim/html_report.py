"""``<results>/report.html``: one page a person opens in a browser.

Plain HTML and a small inline style sheet: no script, no server, no external URL.
Every link and image is a relative path inside the results folder (``plots/...``,
``media/...``) that exists when the page is written, so the folder moves as a
unit; a file that is not there is said to be "not saved", never linked.

Content, in order: what ran and when (run time, software versions, executor and
device), warnings worth seeing, the tables (video: one per metric, outage, CBR;
link: BER, BLER) under the conventions of :mod:`lgvsc.sim.report` ("–" every
trial failed, "*" some failed), the Fig. 1 grids, every other plot, the temporal
plots, the saved videos (``media/index.json``), the output files and the
resolved scenario as YAML (``base_dir`` and absolute paths left out).
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import yaml

from .figures import DASH
from .outputs import write_text
from .scenario import Scenario
from .summary import shown, skipped_points, summarize

REPORT_NAME = "report.html"
INDEX_FILE = "media/index.json"
#: (label, distribution names tried in turn)
PACKAGES = (("lgvsc", ("lgvsc",)), ("torch", ("torch",)), ("sionna", ("sionna-no-rt", "sionna")),
            ("numpy", ("numpy",)), ("PyAV", ("av",)))
#: output files linked from the page when they exist
FILES = ("summary.csv", "timings.csv", "quality_table.md", "cbr_table.md", "cbr_table.csv",
         "results.sqlite", INDEX_FILE)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h3{font-size:1.05rem;margin-bottom:.4rem}
h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.desc{color:#444;margin-top:0} .muted{color:#666;font-size:.9rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.6rem 0}
dl.meta dt{font-weight:600} dl.meta dd{margin:0}
ul.warn li{color:#7a4a00}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4rem 0 .2rem;font-variant-numeric:tabular-nums;
 font-size:.92rem}
th,td{border:1px solid #d5d5d5;padding:.25rem .6rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f0f0} tbody tr:nth-child(even){background:#fafafa}
td .ci{color:#666;font-size:.85em} td.dash{color:#555;text-align:center}
.note{font-size:.85rem;color:#555;margin:.1rem 0 1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(360px,100%),1fr));gap:1rem}
.grid.two{grid-template-columns:repeat(auto-fill,minmax(min(540px,100%),1fr))}
.grid figure.row{grid-column:1/-1;text-align:center}
.grid figure.row img{max-height:420px;width:auto}
figure{margin:0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88rem;color:#333;margin-top:.2rem}
.single{text-align:center;margin:1rem 0}
.clips{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(240px,100%),1fr));gap:.8rem}
.clip video{width:100%;background:#000;display:block}
.clip.failed{outline:3px solid #d62728;outline-offset:2px}
.badge{display:inline-block;background:#d62728;color:#fff;border-radius:3px;padding:0 .35rem;
 font-size:.8rem;font-weight:600}
.missing{color:#999;font-style:italic}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:.8rem;overflow-x:auto;font-size:.85rem}
"""


def esc(text) -> str:
    """``text`` as HTML text or attribute value."""
    return html.escape(str(text), quote=True)


def href(rel: str) -> str:
    """A relative path inside the results folder as an escaped URL."""
    return esc(quote(rel))


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- what the runner records ----------------------------------------------------------
def started_meta(ex, pending) -> dict[str, str]:
    """Store meta of a run about to compute ``pending`` units on executor ``ex``
    (nothing when it computes none: the last run that did stays on record)."""
    if not pending:
        return {}
    name = type(ex).__name__.removesuffix("Executor").lower() or "executor"
    where = "a cluster" if getattr(ex, "address", None) else f"{ex.workers} worker(s)"
    return dict(run_started=now_utc(), run_finished="", run_executor=f"{name}, {where}")


def finished_meta(pending) -> dict[str, str]:
    return dict(run_finished=now_utc()) if pending else {}


def _store_meta(out: Path) -> dict[str, str]:
    from .runner import STORE_NAME
    from .store import ResultsStore

    if not (out / STORE_NAME).is_file():
        return {}
    with ResultsStore(out / STORE_NAME) as store:
        return {k: store.get_meta(k) or "" for k in ("run_started", "run_finished",
                                                      "run_executor")}


# -- page pieces ----------------------------------------------------------------------
def versions() -> list[tuple[str, str]]:
    """(package, version) of the process writing the page, read without importing
    the packages (the FFmpeg of imageio-ffmpeg runs its binary)."""
    out = [("Python", platform.python_version())]
    for label, dists in PACKAGES:
        out.append((label, _dist_version(dists)))
    out.append(("FFmpeg (imageio-ffmpeg)", _ffmpeg_version()))
    return out


def _dist_version(dists) -> str:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def _ffmpeg_version() -> str:
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return "not installed"
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_version()
    except (RuntimeError, OSError) as e:
        return f"unavailable ({e})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def _last_run(meta: dict[str, str]) -> str:
    start, end = meta.get("run_started"), meta.get("run_finished")
    if not start:
        return "not recorded"
    if not end:
        return f"started {start}, did not finish (interrupted, or still running)"
    try:
        wall = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return f"recorded times unreadable ({start!r}, {end!r})"
    return f"{_duration(wall)} wall time ({start} to {end})"


def _meta(out: Path, sc: Scenario, rows: list[dict]) -> str:
    meta = _store_meta(out)
    unit_s = sum(r.get("wall_s") or 0.0 for r in rows)
    computed = sorted({r.get("version") or "unknown" for r in rows})
    items = [("written", now_utc()),
             ("units stored", f"{len(rows)} of {_planned(sc, rows)} planned"),
             ("compute time", f"{_duration(unit_s)} (sum over the stored units; parallel "
                              "workers overlap)"),
             ("last run", _last_run(meta)),
             ("executor", meta.get("run_executor") or
              f"{sc.executor.type}, {sc.executor.workers} worker(s) (the scenario's)"),
             ("device", f"{sc.device}, {sc.precision} precision (link layer)"),
             ("units computed by", ", ".join(f"lgvsc {v}" for v in computed) or DASH),
             ("software here", ", ".join(f"{k} {v}" for k, v in versions()))]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f'<dl class="meta">{body}</dl>'


def _planned(sc: Scenario, rows: list[dict]) -> int:
    """Units the scenario plans, less the link points an early stop skips."""
    return sc.unit_count() - len(skipped_points(sc, rows))


def warnings(out: Path, sc: Scenario, rows: list[dict], media_notes: list[str]) -> list[str]:
    """Lines worth seeing: schemes without units, metrics without values, scheme
    warnings, an incomplete sweep, media problems."""
    from .runner import unavailable_schemes
    from .schemes import SCHEMES

    have = {r["scheme"] for r in rows}
    cannot = unavailable_schemes(sc)
    lines = [f"scheme {e['name']!r}: no stored units"
             + (f" (cannot run here: {cannot[e['name']]})" if e["name"] in cannot else "")
             for e in sc.schemes if e["name"] not in have]
    if sc.kind == "video":
        lines += _metric_warnings(sc, rows)
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        lines += cls.warnings(cls.Config.model_validate(entry), list(sc.channel.snr_db))
    planned = _planned(sc, rows)
    if len(rows) < planned:
        lines.append(f"{planned - len(rows)} of {planned} planned units are not stored "
                     "(skipped schemes, or an interrupted run: `lgvsc run` resumes it)")
    return [_scrub(sc.hide_expanded(x), out, sc) for x in lines + media_notes]


def _metric_warnings(sc: Scenario, rows: list[dict]) -> list[str]:
    from .metrics import resolve_metrics

    missing = {m: sum(1 for r in rows if (r["metrics"] or {}).get(m) is None)
               for m in sc.metrics}
    if not any(missing.values()):
        return []
    here = resolve_metrics(sc.metrics, sc.device)[1]
    lines = []
    for m, n in missing.items():
        if n:
            why = f"; here: {here[m]}" if m in here else ""
            lines.append(f"metric {m}: unavailable in {n} of {len(rows)} units "
                         f"(recorded as unavailable, never as a number{why})")
    return lines


def _scrub(text: str, out: Path, sc: Scenario) -> str:
    """``text`` without the absolute paths of the results and the scenario folders."""
    for folder, name in ((str(out.resolve()), "<results folder>"),
                         (sc.base_dir, "<scenario folder>")):
        if folder and os.path.isabs(folder):
            text = text.replace(folder, name)
    return text


# -- tables ---------------------------------------------------------------------------
def _table(title: str, snrs: list[float], names: list[str], cell, note: str = "") -> str:
    head = "".join(f"<th>{esc(f'{s:g} dB')}</th>" for s in snrs)
    body = "".join(f"<tr><td>{esc(n)}</td>" + "".join(cell(n, s) for s in snrs) + "</tr>"
                   for n in names)
    foot = f'<p class="note">{note}</p>' if note else ""
    return (f"<h3>{esc(title)}</h3><div class=\"scroll\"><table><thead><tr><th>scheme</th>"
            f"{head}</tr></thead><tbody>{body}</tbody></table></div>{foot}")


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _td(text: str = "", ci: str = "", cls: str = "", title: str = "") -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{esc(title)}"' if title else "")
    extra = f' <span class="ci">{esc(ci)}</span>' if ci else ""
    return f"<td{attrs}>{esc(text)}{extra}</td>"


def _ci(lo, hi, fmt: str) -> str:
    lo, hi = _num(lo), _num(hi)
    return "" if lo is None or hi is None else f"[{lo:{fmt}}, {hi:{fmt}}]"


def _layout(sc: Scenario, summary: list[dict]):
    """(rows by (scheme, SNR), SNRs, scheme names with rows, in the scenario's order)."""
    by = {(r["scheme"], float(r["snr_db"])): r for r in summary}
    names = [e["name"] for e in sc.schemes if any(r["scheme"] == e["name"] for r in summary)]
    return by, sorted({float(r["snr_db"]) for r in summary}), names


def _metric_cell(by, metric: str, failure: str):
    def cell(name, s):
        r = by.get((name, s))
        if r is None:
            return _td()
        v, lo, hi, partial = shown(r, metric, failure)
        if v is None:
            every = r["failed_trials"] >= r["trials"]
            return _td(DASH if every else "n/a", cls="dash",
                       title="every trial failed" if every else "metric unavailable")
        return _td(f"{v:.3g}" + ("*" if partial else ""), _ci(lo, hi, ".3g"))
    return cell


def _video_tables(sc: Scenario, summary: list[dict]) -> str:
    by, snrs, names = _layout(sc, summary)
    scored = ("mean of the trials that succeeded; " if sc.failure == "drop"
              else "every trial scored, failed ones as concealed; ")
    note = (f"failure: {esc(sc.failure)} &ndash; {scored}{DASH}: every trial failed; "
            "* some trials failed (see the outage table); n/a: metric unavailable; "
            f"brackets: {sc.statistics.confidence:.0%} interval over per-video means "
            "(over trials when one video).")
    parts = [_table(m.upper(), snrs, names, _metric_cell(by, m, sc.failure), note)
             for m in sc.metrics]

    def outage(name, s):
        r = by.get((name, s))
        if r is None:
            return _td()
        return _td(f"{r['outage']:.2f} ({int(r['failed_trials'])}/{int(r['trials'])})",
                   _ci(r.get("outage_lo"), r.get("outage_hi"), ".2f"))

    def rate(key):
        def cell(name, s):
            v = _num((by.get((name, s)) or {}).get(key))
            return _td("" if v is None else f"{v:.3g}")
        return cell

    parts.append(_table("outage (failed trials / trials)", snrs, names, outage))
    parts.append(_table("CBR (channel uses / 3HWF)", snrs, names, rate("cbr")))
    if any(_num(r.get("keyframe_cbr")) is not None for r in summary):
        parts.append(_table("CBR per keyframe (channel uses / 3HW)", snrs, names,
                            rate("keyframe_cbr")))
    return "".join(parts)


def _rate_cell(by, key: str):
    def cell(name, s):
        r = by.get((name, s))
        if r is None:
            return _td()
        if not r.get("units"):
            return _td("skipped", cls="dash", title=r.get("stop_reason") or "")
        v, hi = _num(r.get(key)), _num(r.get(f"{key}_hi"))
        if v is None:
            return _td()
        if v == 0:
            return _td("0", "" if hi is None else f"(\u2264 {hi:.1e})")
        return _td(f"{v:.2e}", _ci(r.get(f"{key}_lo"), hi, ".1e"))
    return cell


def _link_tables(sc: Scenario, summary: list[dict]) -> str:
    by, snrs, names = _layout(sc, summary)
    note = (f"brackets: {sc.statistics.confidence:.0%} Clopper-Pearson interval; 0 (\u2264 x): "
            "no error seen, x the upper bound; skipped: the sweep stopped early (hover for why).")
    return (_table("BER", snrs, names, _rate_cell(by, "ber"), note)
            + _table("BLER", snrs, names, _rate_cell(by, "bler"), note))


# -- plots ----------------------------------------------------------------------------
def _slug(text: str) -> str:
    """As :func:`lgvsc.sim.media.slug` names a video's files."""
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", text).strip(".") or "_"


def _plot_rank(stem: str, sc: Scenario) -> tuple:
    metrics = {m: i for i, m in enumerate(sc.metrics)}
    for i, prefix in enumerate(("fig3", "fig3_", "outage", "quality_vs_cbr_",
                                "quality_vs_ber_", "ber", "bler")):
        if stem == prefix or (prefix.endswith("_") and stem.startswith(prefix)):
            return i, metrics.get(stem.removeprefix(prefix), len(metrics)), stem
    return 99, 0, stem


def plot_caption(stem: str, labels: dict[str, str]) -> str:
    """A caption from a plot's file name (``labels``: {file slug: video label})."""
    fixed = {"fig3": "every metric and the outage vs SNR (the layout of the paper's Fig. 3)",
             "outage": "outage probability (failed trials / trials) vs SNR",
             "ber": "BER vs SNR, theory dashed", "bler": "BLER vs SNR, theory dashed"}
    if stem in fixed:
        return fixed[stem]
    for prefix, text in (("fig3_", "{} vs SNR (Fig. 3)"), ("quality_vs_cbr_", "{} vs CBR"),
                         ("quality_vs_ber_", "{} vs the measured BER before and after "
                                             "decoding")):
        if stem.startswith(prefix):
            return text.format(stem.removeprefix(prefix).upper())
    if stem.startswith("fig1_"):
        v = stem.removeprefix("fig1_")
        return f"{labels.get(v, v)}: the original frame and each scheme's, per SNR (Fig. 1)"
    m = re.fullmatch(r"temporal_(.+)_(-?[0-9.e+-]+)dB", stem)
    if m:
        v = m.group(1)
        return f"{labels.get(v, v)} at {m.group(2)} dB: per-frame quality"
    return stem.replace("_", " ")


def _figure(out: Path, png: Path, caption: str, cls: str = "") -> str:
    rel = png.relative_to(out).as_posix()
    pdf = png.with_suffix(".pdf")
    link = (f' &middot; <a href="{href(pdf.relative_to(out).as_posix())}">PDF</a>'
            if pdf.is_file() else "")
    cls = f' class="{cls}"' if cls else ""
    return (f'<figure{cls}><a href="{href(rel)}"><img src="{href(rel)}" alt="{esc(caption)}">'
            f"</a><figcaption>{esc(caption)}{link}</figcaption></figure>")


def _span(stem: str) -> str:
    """Multi-panel plots take a whole row of the grid."""
    return "row" if stem == "fig3" or stem.startswith("quality_vs_ber_") else ""


def _plots(out: Path, sc: Scenario) -> str:
    folder = out / "plots"
    pngs = sorted(p for p in folder.glob("*.png") if p.is_file()) if folder.is_dir() else []
    labels = {_slug(v.label()): v.label() for v in sc.videos}
    fig1 = [p for p in pngs if p.stem.startswith("fig1_")]
    temporal = [p for p in pngs if p.stem.startswith("temporal_")]
    rest = sorted((p for p in pngs if p not in fig1 and p not in temporal),
                  key=lambda p: _plot_rank(p.stem, sc))
    parts = []
    if fig1:
        parts.append("<h2>Fig. 1: frames</h2>" + "".join(
            _figure(out, p, plot_caption(p.stem, labels), "single") for p in fig1))
    if rest:
        parts.append('<h2>Plots</h2><div class="grid">' + "".join(
            _figure(out, p, plot_caption(p.stem, labels), _span(p.stem)) for p in rest)
            + "</div>")
    if temporal:
        parts.append('<h2>Per-frame quality</h2><div class="grid two">' + "".join(
            _figure(out, p, plot_caption(p.stem, labels)) for p in temporal) + "</div>")
    if not pngs:
        parts.append('<h2>Plots</h2><p class="missing">no plots saved</p>')
    return "".join(parts)


# -- saved videos ---------------------------------------------------------------------
def media_index(out: Path) -> tuple[list[dict], list[str]]:
    """(the ``kind: video`` items of ``media/index.json``, notes on what is wrong)."""
    path = out / INDEX_FILE
    if not path.is_file():
        return [], []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [], [f"{INDEX_FILE} unreadable ({e}); saved videos not shown"]
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], [f"{INDEX_FILE} has no items list; saved videos not shown"]
    good = [i for i in items if _good_item(i)]
    notes = [f"{len(items) - len(good)} entries of {INDEX_FILE} are malformed and not shown"
             ] if len(good) < len(items) else []
    return [i for i in good if i["kind"] == "video"], notes


def _good_item(item) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return False
    parts = Path(item["path"]).parts
    return (item.get("kind") in ("video", "frame") and not Path(item["path"]).is_absolute()
            and ".." not in parts and parts[:1] == ("media",)
            and isinstance(item.get("video"), str)
            and isinstance(item.get("snr_db"), (int, float, type(None))))


def _clip(out: Path, item: dict) -> str:
    name = "original" if item.get("scheme") is None else str(item["scheme"])
    bits = [name] + ([f"{float(item['snr_db']):g} dB"] if item.get("snr_db") is not None else [])
    bits += [f"trial {item['trial']}"] if item.get("trial") is not None else []
    label = " \u00b7 ".join(bits)
    failed = bool(item.get("failed"))
    badge = ""
    if failed:
        why = item.get("failure") or ""
        badge = (' <span class="badge">FAILED</span>'
                 + (f' <span class="muted">{esc(why)}</span>' if why else ""))
    if (out / item["path"]).is_file():
        media = (f'<video controls preload="metadata" src="{href(item["path"])}"></video>')
    else:
        media = '<p class="missing">video not saved</p>'
    cls = "clip failed" if failed else "clip"
    return f'<figure class="{cls}">{media}<figcaption>{esc(label)}{badge}</figcaption></figure>'


def _video_order(sc: Scenario, items: list[dict]):
    """{video: {SNR or None (originals): [items]}} in the scenario's order."""
    schemes = {e["name"]: i for i, e in enumerate(sc.schemes)}
    videos = {v.label(): i for i, v in enumerate(sc.videos)}
    groups: dict = defaultdict(lambda: defaultdict(list))
    for it in sorted(items, key=lambda i: (schemes.get(i.get("scheme"), -1)
                                           if i.get("scheme") is not None else -2,
                                           str(i.get("scheme")), i.get("trial") or 0)):
        snr = None if it.get("scheme") is None else it.get("snr_db")
        groups[it["video"]][snr].append(it)
    order = sorted(groups, key=lambda v: (videos.get(v, len(videos)), v))
    return [(v, sorted(groups[v].items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)))
            for v in order]


def _videos(out: Path, sc: Scenario, items: list[dict]) -> str:
    if sc.kind != "video":
        return ""
    head = "<h2>Saved videos</h2>"
    if not items:
        why = ("no media/index.json" if not (out / INDEX_FILE).is_file()
               else "none listed in media/index.json")
        return head + f'<p class="missing">no videos saved ({why}; `save: videos:` in the ' \
                      "scenario saves them)</p>"
    parts = [head, '<p class="note">H.264 (yuv420p, CRF 18) mp4; a red outline marks a '
                   "failed trial (its concealed output).</p>"]
    for video, by_snr in _video_order(sc, items):
        parts.append(f"<h3>{esc(video)}</h3>")
        for snr, group in by_snr:
            title = "original" if snr is None else f"{float(snr):g} dB"
            parts.append(f'<p class="muted">{esc(title)}</p><div class="clips">'
                         + "".join(_clip(out, it) for it in group) + "</div>")
    return "".join(parts)


# -- files and scenario -----------------------------------------------------------------
def _files(out: Path) -> str:
    have = [f for f in FILES if (out / f).is_file()]
    links = "".join(f'<li><a href="{href(f)}">{esc(f)}</a></li>' for f in have)
    return f"<h2>Files</h2><ul>{links}</ul>" if have else ""


def _hide_paths(value):
    """``value`` (the scenario as JSON data) with every absolute path shortened to
    ``…/<name>`` (paths on the machine that ran it mean nothing elsewhere)."""
    if isinstance(value, dict):
        return {k: _hide_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_paths(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return f"\u2026/{Path(value).name}"
    return value


def scenario_yaml(sc: Scenario) -> str:
    """The resolved scenario as YAML, without ``base_dir`` and absolute paths."""
    data = sc.model_dump(mode="json")
    data.pop("base_dir", None)
    text = yaml.safe_dump(_hide_paths(data), sort_keys=False, allow_unicode=True, width=100)
    return ("# the resolved scenario stored with the results (base_dir, the scenario "
            "file's folder, left out;\n# absolute paths shortened to \u2026/<name>)\n" + text)


# -- the page ---------------------------------------------------------------------------
def render(out: Path, sc: Scenario, rows: list[dict]) -> str:
    """The page's HTML for results folder ``out`` of ``sc`` with stored ``rows``."""
    out = Path(out)
    summary = summarize(sc, rows) if rows else []
    items, notes = media_index(out) if sc.kind == "video" else ([], [])
    notes += [f"{sum(1 for i in items if not (out / i['path']).is_file())} video(s) listed in "
              f"{INDEX_FILE} are not there (shown as not saved)"
              ] if any(not (out / i["path"]).is_file() for i in items) else []
    warn = warnings(out, sc, rows, notes)
    tables = (_video_tables if sc.kind == "video" else _link_tables)(sc, summary) if summary \
        else '<p class="missing">no stored units yet</p>'
    desc = f'<p class="desc">{esc(sc.description)}</p>' if sc.description else ""
    warn_html = ("<h2>Warnings</h2><ul class=\"warn\">"
                 + "".join(f"<li>{esc(w)}</li>" for w in warn) + "</ul>") if warn else ""
    kind = "video" if sc.kind == "video" else "link-level"
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(sc.name)} \u2013 lgvsc report</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(sc.name)}</h1>{desc}",
        f'<p class="muted">lgvsc {esc(kind)} scenario, channel {esc(sc.channel.type)}</p>',
        _meta(out, sc, rows), warn_html, "<h2>Results</h2>", tables, _plots(out, sc),
        _videos(out, sc, items), _files(out),
        f"<h2>Scenario</h2><pre>{esc(scenario_yaml(sc))}</pre>",
        "</body></html>\n"])


def write_report(out: Path, sc: Scenario, rows: list[dict]) -> Path:
    """Write ``out/report.html`` atomically (:func:`render`); returns its path."""
    return write_text(Path(out) / REPORT_NAME, render(Path(out), sc, rows))


def rewrite_report(out: Path) -> Path:
    """``lgvsc report``: rewrite the report of results folder ``out`` from its store,
    holding the folder's lock (one line when ``out`` is not a results folder)."""
    from .outputs import folder_lock
    from .runner import _prepare, _store_path, stored_results

    out = Path(out)
    _store_path(out)
    with folder_lock(out):
        _prepare(out, fresh=False)
        sc, rows = stored_results(out)
        return write_report(out, sc, rows)
