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
from .units import Unit, fingerprint, plan_units, unit_fingerprints

STORE_NAME = "results.sqlite"


def _stored_scenario(blob: str | None) -> Scenario | None:
    if blob is None:
        return None
    try:
        return validate(json.loads(blob))
    except (ValueError, KeyError, TypeError):  # written by another version
        return None


def _changed(old: Scenario | None, sc: Scenario, stale: list[Unit]) -> str:
    """Which parameters differ, by scheme / video where that is where they differ."""
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
              if e["name"] in names and e["name"] in olds and olds[e["name"]] != e]
    labels = {u.video for u in stale if u.video}
    oldv = {v.label(): v for v in old.videos}
    parts += [f"videos[{v.label()}]" for v in sc.videos
              if v.label() in labels and v.label() in oldv and oldv[v.label()] != v]
    if sc.kind == "link" and old.monte_carlo != sc.monte_carlo:
        parts.append("monte_carlo")
    return ", ".join(parts) or "parameters"


def _clear(out: Path) -> None:
    """Derived outputs (rewritten from the store after every run)."""
    (out / "summary.csv").unlink(missing_ok=True)
    shutil.rmtree(out / "plots", ignore_errors=True)


def open_store(sc: Scenario, out: Path, fresh: bool = False) -> tuple[ResultsStore, list[Unit]]:
    """Open the folder's store and plan what to run.

    Finished units whose parameters are unchanged are kept (a sweep can grow by
    trials, SNRs, videos or schemes); a planned unit stored with other parameters
    is refused unless ``fresh``, which discards exactly those units. Stored units
    the scenario no longer plans are kept and ignored. Returns (store, pending units).
    """
    store = ResultsStore(out / STORE_NAME)
    try:
        old = _stored_scenario(store.get_meta("scenario"))
        stored = _known_params(store, old, out)
        units = plan_units(sc)
        want = unit_fingerprints(sc, units)
        versions = store.unit_versions()
        other = sorted({versions[u.unit_id] for u in units
                        if u.unit_id in versions and versions[u.unit_id] != __version__})
        stale = [u for u in units if u.unit_id in stored and (
            stored[u.unit_id] != want[u.unit_id] or versions[u.unit_id] != __version__)]
        if stale and not fresh:
            kept = len(stored) - len(stale)
            changed = ", ".join(([_changed(old, sc, stale)] if any(
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
        store.set_meta(scenario=sc.model_dump_json(), lgvsc_version=__version__)
    except BaseException:
        store.close()
        raise
    versions = store.unit_versions()
    done = {u for u, p in store.unit_params().items()
            if p == want.get(u) and versions[u] == __version__}
    return store, [u for u in units if u.unit_id not in done]


def _known_params(store: ResultsStore, old: Scenario | None, out: Path) -> dict[str, str]:
    """{unit_id: fingerprint}; units of an upgraded store get theirs from the stored
    scenario, which computed them."""
    stored = store.unit_params()
    unknown = [u for u, p in stored.items() if p is None]
    if not unknown:
        return stored
    if old is None:
        raise UserError(f"{out / STORE_NAME}: units without parameters and no readable "
                        "scenario; rerun with --out to write elsewhere")
    store.set_params(_old_fingerprints(old, unknown))
    return store.unit_params()


def _old_fingerprints(old: Scenario, unit_ids: list[str]) -> dict[str, str]:
    """Fingerprints of stored units from the scenario that computed them."""
    memo, out = {}, {}
    for uid in unit_ids:
        scheme, _, video, _ = uid.split("|")
        key = (scheme, video)
        if key not in memo:
            try:
                memo[key] = fingerprint(old, scheme, video)
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


def stored_results(out: Path) -> tuple[Scenario, list[dict]]:
    """The stored scenario of results folder ``out`` and the rows of its units (units
    stored for other schemes, SNRs or parameters are left out)."""
    if not (out / STORE_NAME).exists():
        raise UserError(f"{out}: no {STORE_NAME} here (not a results folder)")
    with ResultsStore(out / STORE_NAME) as store:
        blob = store.get_meta("scenario")
        if blob is None:
            raise UserError(f"{out / STORE_NAME}: no scenario stored")
        sc = validate(json.loads(blob))
        _known_params(store, sc, out)
        rows = store.rows()
    want = unit_fingerprints(sc, plan_units(sc))  # the scenario's units, as it defines them
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


def finalize(out: Path) -> list[Path]:
    """(Re)write summary.csv and the plots from the store in ``out``."""
    sc, rows = stored_results(out)
    summary = write_summary(out / "summary.csv", summarize(sc, rows), summary_fields(sc))
    return [summary] + plot_results(out, sc)


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
    store, pending = open_store(sc, out, fresh)
    skip = unavailable_schemes(sc)
    for line in scenario_warnings(sc):
        print(f"lgvsc: warning: {line}", file=sys.stderr)
    try:
        pending = [u for u in pending if u.scheme not in skip]
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
