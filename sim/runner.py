"""Runs a scenario: plan units, skip finished ones, execute, store, summarise, plot."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .errors import UserError
from .executors import LocalExecutor, RayExecutor, make_executor, pool_rows, spawn_pool
from .html_report import finished_meta, started_meta, write_report
from .media import (ROW_KEY, missing_units, regenerate, write_files, write_index,
                    write_originals)
from .metrics import resolve_metrics
from .model_plan import loading_lines, order_units
from .outputs import clean_temps, folder_lock, make_folder, refuse_links, remove_tree, safe_dir
from .plots import plot_results
from .scenario import Scenario, validate
from .schemes import SCHEMES
from .seeding import RunContext
from .store import ResultsStore, unusable
from .summary import (skipped_points, summarize, summary_fields, timings, write_summary,
                      write_timings)
from .units import (FILE_FIELDS, Unit, file_digests, fingerprint, plan_units,
                    unit_fingerprints)

STORE_NAME = "results.sqlite"
#: the store and the files SQLite keeps next to it (it would follow a link there)
STORE_FILES = (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal")
#: outputs derived from the store (rewritten by :func:`finalize`); ``plots/`` too
DERIVED = ("summary.csv", "timings.csv", "cbr_table.csv", "cbr_table.md", "quality_table.md")


def _scenario_data(blob: str, path: Path) -> dict:
    """The stored scenario's JSON object; anything else makes the store unusable."""
    try:
        data = json.loads(blob)
    except ValueError:
        raise unusable(path, "the stored scenario is not JSON") from None
    if not isinstance(data, dict):
        raise unusable(path, "the stored scenario is not a JSON object")
    return data


def _stored_scenario(blob: str | None, path: Path) -> Scenario | None:
    """The stored scenario; None when there is none or another version wrote one this
    version does not accept (its units then count as changed)."""
    if blob is None:
        return None
    try:
        return validate(_scenario_data(blob, path))
    except (ValueError, KeyError, TypeError):  # written by another version
        return None


def _stored_files(store: ResultsStore) -> dict[str, dict[str, str]]:
    """{video label: {file field: digest}} the latest run recorded ({} before digests)."""
    blob = store.get_meta("file_digests")
    try:
        data = json.loads(blob) if blob is not None else {}
    except ValueError:
        raise unusable(store.path, "the stored file digests are not JSON") from None
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(d, str) for d in v.values())
            for v in data.values()):
        raise unusable(store.path, "the stored file digests are not {video: {file: digest}}")
    return data


def _file_changes(label: str, old: dict, new: dict) -> str | None:
    """``videos[<label>] (file content)`` when a file the video reads changed."""
    if label not in old:
        return f"videos[{label}] (file content not recorded by the run that stored its units)"
    what = [("file content" if k == "video_file" else "captions file content")
            for k in FILE_FIELDS if old[label].get(k) != new.get(label, {}).get(k)]
    return f"videos[{label}] ({', '.join(what)})" if what else None


def _changed(old: Scenario | None, sc: Scenario, stale: list[Unit],
             old_files: dict | None = None, files: dict | None = None) -> str:
    """Which parameters differ, by scheme / video where that is where they differ
    (``old_files`` / ``files``: the file digests of the stored and of this run)."""
    if old is None:
        return "stored scenario unreadable"
    parts = []
    for key in ("kind", "seed", "device", "precision", "metrics"):
        if getattr(old, key) != getattr(sc, key):
            parts.append(key)
    if {k: v for k, v in old.channel.model_dump().items() if k != "snr_db"} != \
            {k: v for k, v in sc.channel.model_dump().items() if k != "snr_db"}:
        parts.append("channel")
    names = {u.scheme for u in stale}
    olds = {e["name"]: e for e in old.schemes}
    parts += [f"schemes[{e['name']}]" for e in sc.schemes
              if e["name"] in names and e["name"] in olds
              and _entry_params(olds[e["name"]]) != _entry_params(e)]
    labels = {u.video for u in stale if u.video}
    oldv = {v.label(): v for v in old.videos}
    for v in sc.videos:
        label = v.label()
        if label not in labels or label not in oldv:
            continue
        if oldv[label] != v:
            parts.append(f"videos[{label}]")
        elif label in (files or {}) or label in (old_files or {}):
            parts += filter(None, [_file_changes(label, old_files or {}, files or {})])
    if sc.kind == "link" and old.monte_carlo.link_parameters() != sc.monte_carlo.link_parameters():
        parts.append("monte_carlo")
    return ", ".join(parts) or "parameters"


def _entry_params(entry: dict) -> dict:
    """A scheme entry without what does not change its units' results."""
    return {k: v for k, v in entry.items() if k != "resources"}


def _clear(out: Path) -> None:
    """Derived outputs (rewritten from the store after every run); links are removed
    as links, never followed."""
    for p in (out / name for name in DERIVED):
        if p.is_symlink() or not p.is_dir():  # a folder there: refused when written
            p.unlink(missing_ok=True)
    remove_tree(out / "plots")
    remove_tree(out / "media")


def open_store(sc: Scenario, out: Path, fresh: bool = False) -> tuple[ResultsStore, list[Unit]]:
    """Open the folder's store and plan what to run.

    Finished units whose parameters are unchanged are kept (a sweep can grow by
    trials, SNRs, videos or schemes); a planned unit stored with other parameters
    is refused unless ``fresh``, which discards exactly those units. Stored units
    the scenario no longer plans are kept and ignored. Returns (store, pending units).
    """
    store = ResultsStore(out / STORE_NAME)
    try:
        old = _stored_scenario(store.get_meta("scenario"), store.path)
        old_files = _stored_files(store)
        stored = _known_params(store, old, old_files)
        store.check()
        units = plan_units(sc)
        files = file_digests(sc)
        want = unit_fingerprints(sc, units, files)
        versions = store.unit_versions()
        other = sorted({versions[u.unit_id] for u in units
                        if u.unit_id in versions and versions[u.unit_id] != __version__})
        stale = [u for u in units if u.unit_id in stored and (
            stored[u.unit_id] != want[u.unit_id] or versions[u.unit_id] != __version__)]
        if stale and not fresh:
            kept = len(stored) - len(stale)
            changed = ", ".join(([_changed(old, sc, stale, old_files, files)] if any(
                stored[u.unit_id] != want[u.unit_id] for u in stale) else [])
                + [f"computed by lgvsc {v}, this is {__version__}" for v in other])
            raise UserError(
                f"{out}: {len(stale)} stored units of this sweep were computed with other "
                f"parameters (changed: {changed}); rerun with --fresh to discard those "
                f"{len(stale)} units (the other {kept} stored units are kept) or with --out "
                "to write elsewhere")
        if stale:
            n = store.delete(u.unit_id for u in stale)
            print(f"lgvsc: --fresh: discarded {n} stored units computed with other parameters",
                  file=sys.stderr)
            _clear(out)
        store.set_meta(scenario=sc.model_dump_json(), lgvsc_version=__version__,
                       file_digests=json.dumps(files, sort_keys=True))
    except BaseException:
        store.close()
        raise
    versions = store.unit_versions()
    done = {u for u, p in store.unit_params().items()
            if p == want.get(u) and versions[u] == __version__}
    return store, [u for u in units if u.unit_id not in done]


def _known_params(store: ResultsStore, old: Scenario | None, files: dict) -> dict[str, str]:
    """{unit_id: fingerprint}; units of an upgraded store get theirs from the stored
    scenario and file digests, which computed them."""
    stored = store.unit_params()
    unknown = [u for u, p in stored.items() if p is None]
    if not unknown:
        return stored
    if old is None:
        raise unusable(store.path, "units without parameters and no readable scenario; "
                                   "rerun with --out to write elsewhere")
    store.set_params(_old_fingerprints(old, unknown, files, store.path))
    return store.unit_params()


def _old_fingerprints(old: Scenario, unit_ids: list[str], files: dict,
                      path: Path) -> dict[str, str]:
    """Fingerprints of stored units from the scenario that computed them."""
    memo, out = {}, {}
    for uid in unit_ids:
        parts = uid.split("|") if isinstance(uid, str) else []
        if len(parts) != 4:
            raise unusable(path, f"unit id {uid!r} is not scheme|snr|video|trial")
        key = (parts[0], parts[2])
        if key not in memo:
            try:
                memo[key] = fingerprint(old, *key, files)
            except StopIteration:  # not in the stored scenario: can never match
                memo[key] = "unknown"
        out[uid] = memo[key]
    return out


def unavailable_schemes(sc: Scenario) -> dict[str, str]:
    """{scheme name: reason} for the schemes that cannot run here."""
    out = {}
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        reason = cls.unavailable_reason(cls.Config.model_validate(entry))
        if reason:
            out[entry["name"]] = reason
    return out


def _store_path(out: Path) -> Path:
    """``out``'s store; one line when ``out`` is not a results folder."""
    path = out / STORE_NAME
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{out}: no {STORE_NAME} here (not a results folder)")
    refuse_links(out, STORE_FILES)
    return path


def stored_results(out: Path) -> tuple[Scenario, list[dict]]:
    """The stored scenario of results folder ``out`` and the rows of its units (units
    stored for other schemes, SNRs or parameters are left out). Reads no video file:
    file-sourced units are matched by the digests their run recorded."""
    path = _store_path(out)
    with ResultsStore(path) as store:
        blob = store.get_meta("scenario")
        if blob is None:
            raise unusable(path, "no scenario stored")
        try:
            sc = validate(_scenario_data(blob, path))
        except (ValueError, KeyError, TypeError) as e:
            raise unusable(path, f"stored scenario unreadable: {e}") from None
        files = _stored_files(store)
        _known_params(store, sc, files)
        rows = store.rows()
    # the scenario's units, as it defines them
    want = unit_fingerprints(sc, plan_units(sc), files)
    return sc, [r for r in rows if want.get(r["unit_id"]) == r["params"]]


def scenario_warnings(sc: Scenario) -> list[str]:
    """One line per thing that will not run or may not mean what the user thinks:
    schemes and metrics unavailable here, and each scheme's own warnings."""
    lines = [f"scheme {name!r} cannot run here: {reason}; its units will be skipped"
             for name, reason in unavailable_schemes(sc).items()]
    if sc.kind == "video":
        lines += [f"metric {name} unavailable here ({reason}); recorded as unavailable"
                  for name, reason in resolve_metrics(sc.metrics, sc.device)[1].items()]
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        lines += cls.warnings(cls.Config.model_validate(entry), list(sc.channel.snr_db))
    return lines


def _prepare(out: Path, fresh: bool) -> None:
    """Before a locked run touches ``out``: no link where the store lives, ``plots`` a
    real folder (under ``fresh`` a link there is removed as a link), no stale temps."""
    refuse_links(out, STORE_FILES)
    for sub in ("plots", "media"):
        if (out / sub).is_symlink():
            safe_dir(out / sub, unlink_link=fresh)
    clean_temps(out)
    clean_temps(out / "plots")


def finalize(out: str | Path) -> list[Path]:
    """(Re)write summary.csv, timings.csv and the plots from the store in ``out``,
    holding the folder's lock; every file is written atomically."""
    out = Path(out)
    _store_path(out)
    with folder_lock(out):
        _prepare(out, fresh=False)
        sc, rows = stored_results(out)
        summary = write_summary(out / "summary.csv", summarize(sc, rows), summary_fields(sc))
        times = write_timings(out / "timings.csv", timings(sc, rows))
        return ([summary, times] + plot_results(out, sc) + _media_outputs(out, sc, rows)
                + [write_report(out, sc, rows)])


def make_media(out: str | Path, progress: bool = True) -> list[Path]:
    """``lgvsc media``: make the missing media of results folder ``out`` (its units run
    again, seeded, and are checked against the store), then rewrite the outputs;
    returns the media files written."""
    out = Path(out)
    _store_path(out)
    with folder_lock(out):
        _prepare(out, fresh=False)
        sc, rows = stored_results(out)
        if sc.kind != "video":
            raise UserError(f"{out}: a link scenario has no media")
        try:
            written = regenerate(out, sc, rows, progress)
        except RuntimeError as e:
            raise UserError(str(e)) from None
    finalize(out)
    return written


def run(sc: Scenario, out: str | Path | None = None, executor: str | None = None,
        workers: int | None = None, fresh: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``sc``; returns the results folder.

    Nothing in the folder is touched before the scenario is known to run here (device,
    executor, :func:`~lgvsc.sim.preflight.preflight`); then the folder's lock is held
    until the last output is written, so a second run on it is refused."""
    out = Path(out) if out else Path("results") / sc.name
    try:
        RunContext(sc.device, sc.precision).check()
    except RuntimeError as e:
        raise UserError(str(e)) from None
    ex_spec = sc.executor
    ex = make_executor(executor or ex_spec.type, workers or ex_spec.workers, ex_spec.address)
    from .preflight import preflight

    warnings = list(preflight(sc) or [])
    for line in scenario_warnings(sc) + warnings:
        print(f"lgvsc: warning: {sc.hide_expanded(line)}", file=sys.stderr)
    make_folder(out)
    with folder_lock(out):
        _prepare(out, fresh)
        _execute(sc, out, ex, fresh, progress)
    return out


def _media_outputs(out: Path, sc: Scenario, rows: list[dict]) -> list[Path]:
    """``media/index.json``, the Fig. 1 grids and the temporal plots (video runs)."""
    if sc.kind != "video":
        return []
    from .media_figures import media_figures

    return [write_index(out, sc, rows)] + media_figures(out, sc, rows)


def _say_loading(sc: Scenario, pending: list[Unit], ex) -> None:
    """What the pending units will load, where, and its memory (one line each)."""
    pool = ex.workers if isinstance(ex, LocalExecutor) else 1
    for line in loading_lines(sc, pending, pool):
        print(f"lgvsc: {sc.hide_expanded(line)}", file=sys.stderr)


def _execute(sc: Scenario, out: Path, ex, fresh: bool, progress: bool) -> None:
    """Open the store, run what is pending, then rewrite the outputs (also after an
    interruption: the finished units are stored)."""
    store, pending = open_store(sc, out, fresh)
    skip = unavailable_schemes(sc)
    try:
        waves = sc.kind == "link" and sc.monte_carlo.stops_early()
        # the sweep's finished units (what stops a scheme early), read only when needed
        todo = {u.unit_id for u in pending}
        finished_ids = {u.unit_id for u in plan_units(sc)} - todo if waves else set()
        done = [r for r in store.rows() if r["unit_id"] in finished_ids] if waves else []
        pending = order_units(sc, [u for u in pending if u.scheme not in skip])
        _say_loading(sc, pending, ex)
        store.set_meta(**started_meta(ex, pending))  # the report's last run
        blob = sc.model_dump_json()
        # on a terminal the bar redraws; in a log (CI) it writes a line every 30 s at most
        with tqdm(total=len(pending), desc=sc.name, unit="unit", file=sys.stderr,
                  mininterval=0.1 if sys.stderr.isatty() else 30.0,
                  disable=not progress or not pending) as bar:
            table = ProgressTable(sc) if progress and pending and sc.kind == "link" else None

            def finished(row: dict) -> None:
                write_files(out, row.pop(ROW_KEY, None) or {})  # media: files, not units
                store.add(row)
                if waves:
                    done.append(row)
                bar.set_postfix_str(f"{row['scheme']} @ {row['snr_db']:g} dB", refresh=False)
                bar.update()
                if table:
                    table.unit(row)

            if waves:
                _run_in_waves(sc, ex, blob, pending, done, finished, bar, table)
            else:
                for row in ex.run(blob, pending):
                    finished(row)
        store.set_meta(**finished_meta(pending))
    finally:
        store.close()
        if (out / STORE_NAME).exists():
            if sc.kind == "video":
                _originals(out)
            finalize(out)


def _originals(out: Path) -> None:
    """The original frames / videos the stored units show, and one line about
    stored units whose media are missing (``lgvsc media`` makes them)."""
    sc, rows = stored_results(out)
    write_originals(out, sc, rows)
    missing = missing_units(out, sc, rows)
    if missing:
        print(f"lgvsc: {len(missing)} stored unit(s) have no saved media (stored before "
              f"`save:` asked for them); `lgvsc media {out}` makes them", file=sys.stderr)


def _run_in_waves(sc: Scenario, ex, blob: str, pending: list[Unit], done: list[dict],
                  finished, bar, table) -> None:
    """A link sweep that stops early: wave after wave, each scheme not yet stopped runs
    its lowest pending SNR point (the schemes in parallel), and after each wave the
    points a lower one of the same scheme stopped are skipped (:func:`skipped_points`,
    from the scheme's stored units, ``done``, this run's and a resumed run's). So the
    skips depend on the units' results only, never on the executor, its workers or
    the order units finish in; a skipped point is never computed."""
    left = list(pending)
    with _wave_runner(ex) as run_wave:
        while left:
            skipped = skipped_points(sc, done)
            now = [u for u in left if (u.scheme, u.snr_db) in skipped]
            order = {name: i for i, name in enumerate(dict.fromkeys(u.scheme for u in left))}
            for u in sorted(now, key=lambda u: (order[u.scheme], u.snr_db)):
                bar.set_postfix_str(f"{u.scheme} @ {u.snr_db:g} dB skipped", refresh=False)
                bar.update()
                if table:
                    table.skipped(u, skipped[(u.scheme, u.snr_db)])
            left = [u for u in left if (u.scheme, u.snr_db) not in skipped]
            wave: dict[str, Unit] = {}
            for u in left:  # scheme by scheme, as order_units put them
                if u.scheme not in wave or u.snr_db < wave[u.scheme].snr_db:
                    wave[u.scheme] = u
            if not wave:
                return
            for row in run_wave(blob, list(wave.values()), frozenset(u.scheme for u in left)):
                finished(row)
            ran = set(wave.values())
            left = [u for u in left if u not in ran]


@contextmanager
def _wave_runner(ex):
    """``run_wave(blob, units, keep)`` for :func:`_run_in_waves`, yielding each unit's
    row as it finishes, on executor ``ex`` started once for every wave: a local pool
    keeps its workers (started anew per wave they would cost seconds each; ``keep``,
    the schemes of the units still to come, tells them what to keep loaded, as
    :func:`~lgvsc.sim.units.run_kept` does in :meth:`LocalExecutor.run`), Ray is
    started once with the settings its executor would use (each wave's
    :meth:`RayExecutor.run` joins it); in-process waves cost nothing to start."""
    if isinstance(ex, LocalExecutor) and ex.workers > 1:
        with spawn_pool(ex.workers) as pool:
            yield lambda blob, units, keep: pool_rows(pool, blob, units, [keep] * len(units))
        return
    run_wave = lambda blob, units, keep: ex.run(blob, units)  # noqa: E731
    if not isinstance(ex, RayExecutor):
        yield run_wave
        return
    try:
        import ray
    except ImportError:  # the executor's run says what is missing
        yield run_wave
        return
    if ray.is_initialized():
        yield run_wave
        return
    ray.init(**ex.init_kwargs())
    try:
        yield run_wave
    finally:
        ray.shutdown()


#: a link unit's stop reason as the progress table says it
_STATUS = {"target_block_errors": "reached target block errors",
           "max_batches": "reached max batches"}


class ProgressTable:
    """The per-SNR table a link sweep prints on stderr while it runs, as Sionna's
    ``sim_ber`` does: a header, then one line per finished (or skipped) unit, written
    with ``tqdm.write`` so that the progress bar stays whole."""

    HEADS = ("SNR [dB]", "bit errors", "bits", "BER", "block errors", "blocks", "BLER",
             "iterations", "time [s]")

    def __init__(self, sc: Scenario, write=None):
        self.write = write or (lambda line: tqdm.write(line, file=sys.stderr))
        self.width = max([len(e["name"]) for e in sc.schemes] + [len("scheme")])
        self.widths = [max(len(h), 10) for h in self.HEADS]
        head = self._line("scheme", self.HEADS, "status")
        self.write(head)
        self.write("-" * len(head))

    def _line(self, scheme: str, cells, status: str) -> str:
        return " | ".join([f"{scheme:<{self.width}}"]
                          + [f"{c:>{w}}" for c, w in zip(cells, self.widths)] + [status])

    def unit(self, row: dict) -> None:
        """The line of a finished link unit (its stored row)."""
        bits, blocks = row["bits"] or 0, row["blocks"] or 0
        iters = (row.get("extra") or {}).get("iterations_mean")
        cells = (f"{row['snr_db']:g}", str(row["bit_errors"]), str(bits),
                 f"{row['bit_errors'] / bits:.4e}" if bits else "-", str(row["block_errors"]),
                 str(blocks), f"{row['block_errors'] / blocks:.4e}" if blocks else "-",
                 "-" if iters is None else f"{float(iters):.1f}", f"{row['wall_s'] or 0:.2f}")
        reason = row.get("stop_reason") or ""
        self.write(self._line(row["scheme"], cells, _STATUS.get(reason, reason)))

    def skipped(self, unit: Unit, reason: str) -> None:
        """The line of a point an early stop skipped (``reason``: its stop_reason)."""
        cells = (f"{unit.snr_db:g}",) + ("-",) * (len(self.HEADS) - 1)
        self.write(self._line(unit.scheme, cells, reason))
