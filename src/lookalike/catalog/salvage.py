"""Saving what can be read of a damaged product store (``lookalike check --repair``).

First ``REINDEX`` (a damaged SQLite index b-tree is rebuilt from its table: often all ``quick_check`` finds).
When pages of the tables themselves are damaged, every row that can still be read is copied into a new store
(table by table; a range of rows that fails is read again row by row), the damaged file is kept beside it as
``products.db.damaged-<time>``, and the new one takes its place. Its word index and its vector index are rebuilt
when it next opens. Run it with nothing else using the catalogue (the server stopped): the file is replaced.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lookalike.backends.embedded import fsync_dir
from lookalike.store.health import quick_check
from lookalike.store.sqlite import SCHEMA

__all__ = ["SalvageReport", "salvage_store"]

_TABLES = ("meta", "products", "pictures", "tombstones", "ingest_errors")
_STEP = 256


@dataclass
class SalvageReport:
    """What :func:`salvage_store` did: ``reindexed`` (REINDEX was enough) or the rows ``kept`` and ``lost`` per
    table, and where the damaged file went."""

    reindexed: bool = False
    kept: dict[str, int] | None = None
    lost: dict[str, int] | None = None
    damaged_copy: Path | None = None

    def summary(self) -> str:
        if self.reindexed:
            return "product store: its indexes were rebuilt (REINDEX)"
        lost = {t: n for t, n in (self.lost or {}).items() if n}
        return (
            f"product store: rebuilt from the rows that could be read ({(self.kept or {}).get('products', 0)} products"
            f"{'; lost: ' + ', '.join(f'{n} {t} rows' for t, n in lost.items()) if lost else ', nothing lost'}); "
            f"the damaged file is kept as {self.damaged_copy}"
        )


def _rows(conn: sqlite3.Connection, table: str, columns: str) -> Iterator[tuple[object, ...] | None]:
    """Every readable row of ``table`` (rowid first); None for each range or row that cannot be read."""
    try:
        yield from conn.execute(f"SELECT rowid, {columns} FROM {table}").fetchall()
        return
    except sqlite3.DatabaseError:
        pass
    try:
        top = int(conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0] or 0)
    except sqlite3.DatabaseError:
        top = 1 << 22
    for lo in range(0, top + 1, _STEP):
        try:
            yield from conn.execute(
                f"SELECT rowid, {columns} FROM {table} WHERE rowid BETWEEN ? AND ?", (lo, lo + _STEP - 1)
            ).fetchall()
            continue
        except sqlite3.DatabaseError:
            pass
        for rowid in range(lo, lo + _STEP):
            try:
                yield from conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid = ?", (rowid,)).fetchall()
            except sqlite3.DatabaseError:
                yield None


def salvage_store(db: Path) -> SalvageReport:
    """Repair the store at ``db`` in place (see the module docstring); nothing to do when it is sound."""
    conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
    try:
        try:
            conn.execute("REINDEX")
            if not quick_check(conn):
                return SalvageReport(reindexed=True)
        except sqlite3.DatabaseError:
            pass
        fresh = db.with_name(f".{db.name}.salvage")
        fresh.unlink(missing_ok=True)
        out = sqlite3.connect(fresh, isolation_level=None)
        kept: dict[str, int] = {}
        lost: dict[str, int] = {}
        try:
            out.executescript(SCHEMA)
            out.execute("BEGIN")
            for table in _TABLES:
                columns = [r[1] for r in out.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                marks = ", ".join("?" * (len(columns) + 1))
                kept[table] = lost[table] = 0
                for row in _rows(conn, table, names):
                    if row is None:
                        lost[table] += 1
                        continue
                    out.execute(f"INSERT OR REPLACE INTO {table}(rowid, {names}) VALUES ({marks})", row)
                    kept[table] += 1
            seq = out.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            seq = str(int(seq[0]) + 1) if seq else str(int(time.time()))
            out.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('seq', ?), ('index_min_seq', ?)", (seq, seq))
            out.execute("DELETE FROM meta WHERE key = 'text_index'")  # the word index is rebuilt on open
            gone = out.execute("SELECT MAX(rowid) FROM tombstones").fetchone()[0] or 0  # deleted products' row ids
            out.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'products'", (gone // 64,))
            out.execute("COMMIT")
        finally:
            out.close()
    finally:
        conn.close()
    kept_as = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(db, kept_as)
    for suffix in ("-wal", "-shm"):  # the damaged file's log must not be replayed into the new one
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    os.replace(fresh, db)
    fsync_dir(db.parent)
    for p in db.parent.glob("index.*.faiss"):  # vectors may have been lost: rebuilt from the new store
        p.unlink()
    return SalvageReport(kept=kept, lost=lost, damaged_copy=kept_as)
