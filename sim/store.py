"""Results store: one SQLite file (WAL) per results folder.

* ``meta``: the resolved scenario (JSON) of the latest run and the lgvsc version.
* ``units``: one row per finished unit with raw counts, timings, whether the
  trial failed (``failed``, ``failure`` says why), the fingerprint of the
  parameters it was computed with (``params``), the lgvsc version that computed
  it (``version``) and JSON columns for metrics and extras. A unit is one INSERT in its own transaction, so a crash (even
  ``kill -9``) loses at most the units in flight and never leaves a partial
  row; a rerun skips finished units whose parameters are unchanged.

Stores written by schema 1 (no ``failed`` / ``params`` columns) are upgraded
in place when opened: the columns are added, ``failed`` is derived from the
block errors of the digital pipe (what failure meant then), ``version`` is
0.1.0 and ``params`` is left empty for the runner to fill from the stored
scenario.

Whatever is wrong with the file (not SQLite, a damaged page, a row that does not
fit the schema) is a one-line :class:`UserError`
``<path>: not a usable results store (<reason>)``, at whichever query finds it.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError

SCHEMA_VERSION = 2

COLUMNS = {
    "unit_id": "TEXT PRIMARY KEY", "scheme": "TEXT NOT NULL", "snr_db": "REAL NOT NULL",
    "video": "TEXT NOT NULL", "trial": "INTEGER NOT NULL", "seed": "INTEGER NOT NULL",
    "bits": "INTEGER", "bit_errors": "INTEGER", "blocks": "INTEGER", "block_errors": "INTEGER",
    "raw_bits": "INTEGER", "raw_bit_errors": "INTEGER", "channel_uses": "INTEGER",
    "batches": "INTEGER", "stop_reason": "TEXT", "wall_s": "REAL", "finished_at": "TEXT",
    "metrics": "TEXT", "extra": "TEXT", "failed": "INTEGER", "failure": "TEXT", "params": "TEXT",
    "version": "TEXT",
}
#: columns added by schema 2, with how old rows get them
_UPGRADE = {"failed": "CASE WHEN block_errors > 0 THEN 1 ELSE 0 END", "failure": "NULL",
            "params": "NULL", "version": "'0.1.0'"}
JSON_COLUMNS = ("metrics", "extra")
_NOT_NULL = tuple(k for k, v in COLUMNS.items() if "NOT NULL" in v or "PRIMARY" in v)


def unusable(path: Path, reason: str) -> UserError:
    """The one-line error for a results store that cannot be used."""
    return UserError(f"{path}: not a usable results store ({reason})")


def _guarded(method):
    """SQLite errors of ``method`` (a damaged file shows at any query) -> one line."""
    @functools.wraps(method)
    def wrapper(self, *args, **kw):
        try:
            return method(self, *args, **kw)
        except (sqlite3.ProgrammingError, sqlite3.IntegrityError):
            raise  # misuse (closed store, duplicate unit): a bug, not a damaged file
        except sqlite3.DatabaseError as e:
            raise unusable(self.path, str(e)) from None
    return wrapper


class ResultsStore:
    """Open (or create) ``path``; use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = None
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS units ({cols})")
            self._upgrade()
        except sqlite3.DatabaseError as e:
            self.close()
            raise unusable(self.path, str(e)) from None

    def _upgrade(self) -> None:
        have = {r[1] for r in self.db.execute("PRAGMA table_info(units)")}
        missing = [c for c in _UPGRADE if c not in have]
        if not missing:
            return
        with self.db:
            self.db.execute("BEGIN")
            for c in missing:
                self.db.execute(f"ALTER TABLE units ADD COLUMN {c} {COLUMNS[c]}")
                self.db.execute(f"UPDATE units SET {c} = {_UPGRADE[c]}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    # -- meta ---------------------------------------------------------------
    @_guarded
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    @_guarded
    def set_meta(self, **items: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", items.items())

    # -- units --------------------------------------------------------------
    @_guarded
    def unit_params(self) -> dict[str, str | None]:
        """{unit_id: parameter fingerprint} of every stored unit (None: not yet known)."""
        return dict(self.db.execute("SELECT unit_id, params FROM units"))

    @_guarded
    def unit_versions(self) -> dict[str, str]:
        """{unit_id: lgvsc version that computed it} ('unknown' where none is stored)."""
        return {u: v if isinstance(v, str) else "unknown"
                for u, v in self.db.execute("SELECT unit_id, version FROM units")}

    @_guarded
    def set_params(self, params: dict[str, str]) -> None:
        """Fill in fingerprints of stored units (upgraded stores)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE units SET params=? WHERE unit_id=?",
                                [(p, u) for u, p in params.items()])

    @_guarded
    def delete(self, unit_ids) -> int:
        """Discard the given units in one transaction; returns how many went."""
        ids = list(unit_ids)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM units WHERE unit_id=?", [(u,) for u in ids])
        return len(ids)

    @_guarded
    def add(self, row: dict) -> None:
        """Insert one finished unit atomically."""
        row = dict(row)
        row.setdefault("finished_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        for k in JSON_COLUMNS:
            row[k] = json.dumps(row.get(k) or {}, sort_keys=True)
        keys = [k for k in COLUMNS if k in row]
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        self.db.execute(f"INSERT INTO units ({', '.join(keys)}) VALUES "
                        f"({', '.join('?' * len(keys))})", [row[k] for k in keys])

    @_guarded
    def check(self) -> None:
        """Raise the one-line error now if any page or unit row is damaged (a run checks
        before computing units it could not store)."""
        problems = [r[0] for r in self.db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise unusable(self.path, "; ".join(map(str, problems[:2])))
        self.rows()

    @_guarded
    def rows(self) -> list[dict]:
        """Every stored unit as a dict (JSON columns decoded), checked against the
        schema: a row that does not fit makes the store unusable."""
        cur = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM units "
                              "ORDER BY scheme, snr_db, video, trial")
        return [self._checked(dict(zip(COLUMNS, r))) for r in cur]

    def _checked(self, d: dict) -> dict:
        uid = d["unit_id"]
        for k, decl in COLUMNS.items():
            v = d[k]
            if v is None:
                if k in _NOT_NULL:
                    raise unusable(self.path, f"unit {uid!r}: no {k}")
            elif decl.startswith("TEXT") and not isinstance(v, str):
                raise unusable(self.path, f"unit {uid!r}: {k} is not text ({v!r})")
            elif decl.startswith(("INTEGER", "REAL")) and (
                    not isinstance(v, (int, float)) or math.isnan(v)):
                raise unusable(self.path, f"unit {uid!r}: {k} is not a number ({v!r})")
        for k in JSON_COLUMNS:
            try:
                d[k] = json.loads(d[k] or "{}")
            except ValueError:
                raise unusable(self.path, f"unit {uid!r}: {k} is not JSON") from None
            if not isinstance(d[k], dict):
                raise unusable(self.path, f"unit {uid!r}: {k} is not a JSON object")
        return d
