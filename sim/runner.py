"""Runs a scenario: plan units, skip finished ones, execute, store, summarise, plot."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .errors import UserError
from .executors import make_executor
from .metrics import resolve_metrics
from .plots import plot_results
from .scenario import Scenario, validate
from .schemes import SCHEMES
from .seeding import RunContext
from .store import ResultsStore
from .summary import summarize, summary_fields, write_summary
from .units import plan_units

STORE_NAME = "results.sqlite"


def _changed_fields(old_json: str, sc: Scenario) -> list[str]:
    try:
        old = validate(json.loads(old_json)).parameters()
    except Exception:  # noqa: BLE001  (stored by another version: report everything)
        return ["(stored scenario unreadable)"]
    new = sc.parameters()
    return [k for k in new if old.get(k) != new[k]]


def _clear(out: Path) -> None:
    for name in (STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm", "summary.csv"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "plots", ignore_errors=True)


def open_store(sc: Scenario, out: Path, fresh: bool = False) -> ResultsStore:
    """Open the folder's store, refusing one written by different parameters."""
    if fresh:
        _clear(out)
    store = ResultsStore(out / STORE_NAME)
    old = store.get_meta("scenario")
    if old is not None and store.get_meta("fingerprint") != sc.fingerprint():
        changed = ", ".join(_changed_fields(old, sc))
        store.close()
        raise UserError(f"{out}: holds results of scenario {json.loads(old)['name']!r} with "
                        f"other parameters (changed: {changed}); rerun with --fresh to discard "
                        f"them or --out to write elsewhere")
    store.set_meta(scenario=sc.model_dump_json(), fingerprint=sc.fingerprint(),
                   lgvsc_version=__version__)
    return store


def unavailable_schemes(sc: Scenario) -> dict[str, str]:
    """{scheme name: reason} for the schemes that cannot run here."""
    out = {}
    for entry in sc.schemes:
        cls = SCHEMES.get(entry["type"])
        reason = cls.unavailable_reason(cls.Config.model_validate(entry))
        if reason:
            out[entry["name"]] = reason
    return out


def finalize(out: Path) -> list[Path]:
    """(Re)write summary.csv and the plots from the store in ``out``."""
    if not (out / STORE_NAME).exists():
        raise UserError(f"{out}: no {STORE_NAME} here (not a results folder)")
    with ResultsStore(out / STORE_NAME) as store:
        blob = store.get_meta("scenario")
        if blob is None:
            raise UserError(f"{out / STORE_NAME}: no scenario stored")
        rows = store.rows()
    sc = validate(json.loads(blob))
    summary = write_summary(out / "summary.csv", summarize(sc, rows), summary_fields(sc))
    return [summary] + plot_results(out, blob)


def run(sc: Scenario, out: str | Path | None = None, executor: str | None = None,
        workers: int | None = None, fresh: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``sc``; returns the results folder."""
    out = Path(out) if out else Path("results") / sc.name
    try:
        RunContext(sc.device, sc.precision).check()
    except RuntimeError as e:
        raise UserError(str(e)) from None
    ex_spec = sc.executor
    ex = make_executor(executor or ex_spec.type, workers or ex_spec.workers, ex_spec.address)
    store = open_store(sc, out, fresh)
    skip = unavailable_schemes(sc)
    for name, reason in skip.items():
        print(f"lgvsc: scheme {name!r} unavailable: {reason}; its units are skipped",
              file=sys.stderr)
    if sc.kind == "video":
        for name, reason in resolve_metrics(sc.metrics, sc.device)[1].items():
            print(f"lgvsc: metric {name} unavailable ({reason}); recorded as unavailable",
                  file=sys.stderr)
    try:
        done = store.finished_ids()
        pending = [u for u in plan_units(sc) if u.unit_id not in done and u.scheme not in skip]
        blob = sc.model_dump_json()
        # on a terminal the bar redraws; in a log (CI) it writes a line every 30 s at most
        with tqdm(total=len(pending), desc=sc.name, unit="unit", file=sys.stderr,
                  mininterval=0.1 if sys.stderr.isatty() else 30.0,
                  disable=not progress or not pending) as bar:
            for row in ex.run(blob, pending):
                store.add(row)
                bar.set_postfix_str(f"{row['scheme']} @ {row['snr_db']:g} dB", refresh=False)
                bar.update()
    finally:
        store.close()
        if (out / STORE_NAME).exists():
            finalize(out)
    return out
