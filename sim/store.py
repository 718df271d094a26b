"""Results store: one SQLite file (WAL) per results folder.

* ``meta``: the resolved scenario (JSON), its parameter fingerprint, versions.
* ``units``: one row per finished unit with raw counts, timings and JSON
  columns for metrics and extras. A unit is one INSERT in its own
  transaction, so a crash (even ``kill -9``) loses at most the units in
  flight and never leaves a partial row; a rerun skips finished units.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError

SCHEMA_VERSION = 1

COLUMNS = {
    "unit_id": "TEXT PRIMARY KEY", "scheme": "TEXT NOT NULL", "snr_db": "REAL NOT NULL",
    "video": "TEXT NOT NULL", "trial": "INTEGER NOT NULL", "seed": "INTEGER NOT NULL",
    "bits": "INTEGER", "bit_errors": "INTEGER", "blocks": "INTEGER", "block_errors": "INTEGER",
    "raw_bits": "INTEGER", "raw_bit_errors": "INTEGER", "channel_uses": "INTEGER",
    "batches": "INTEGER", "stop_reason": "TEXT", "wall_s": "REAL", "finished_at": "TEXT",
    "metrics": "TEXT", "extra": "TEXT",
}
JSON_COLUMNS = ("metrics", "extra")


class ResultsStore:
    """Open (or create) ``path``; use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS units ({cols})")
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path}: not a usable results store ({e})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, **items: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", items.items())

    # -- units --------------------------------------------------------------
    def finished_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT unit_id FROM units")}

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

    def rows(self) -> list[dict]:
        cur = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM units "
                              "ORDER BY scheme, snr_db, video, trial")
        out = []
        for r in cur:
            d = dict(zip(COLUMNS, r))
            for k in JSON_COLUMNS:
                d[k] = json.loads(d[k] or "{}")
            out.append(d)
        return out
