"""The product store's health: opening it without writing, read-only when the disk is full, translating a full
disk, and SQLite's own page check.

* **Opening writes nothing** when the schema is there already (:func:`schema_missing`): ``info``, ``search`` and
  ``serve`` work on a 100 % full disk.
* **Read-only fallback** (:func:`connect`): a read-write connection that cannot start (a full disk fails SQLite's
  shared-memory file with "disk I/O error"; a read-only folder with "unable to open") is replaced by a read-only
  one (``mode=ro``), or, when even that cannot map its shared memory and the write-ahead log holds nothing, by an
  ``immutable=1`` one (no locks, no shared memory). A write through it raises :class:`StorageFullError` (or
  :class:`CatalogError` for a folder that cannot be written), never SQLite's own error.
* **A full disk during a write** (:func:`raise_if_full`): SQLite rolls the transaction back itself on
  SQLITE_FULL, so :func:`rollback` rolls back only a transaction still open (an explicit ROLLBACK would fail
  with "no transaction is active" and hide the real error), and the error becomes :class:`StorageFullError`.
* **Damaged pages** (:func:`quick_check`): ``PRAGMA quick_check`` reads every page (O(size of the database): about
  a tenth of a second for a 9.5k-product store, so it runs in ``verify``/``check``, not on every open; an open
  reads the header and the schema, which fails at once on a damaged first page).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from pathlib import Path
from urllib.request import pathname2url

from lookalike.errors import CatalogDamagedError, CatalogError, LookalikeError, StorageFullError
from lookalike.fsutil import full_disk_error, is_disk_full

__all__ = ["connect", "damaged", "quick_check", "raise_if_full", "read_only_error", "rollback", "schema_missing"]

log = logging.getLogger(__name__)
_NAMES = re.compile(r"CREATE\s+(?:VIRTUAL\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)
# SQLite error names for which a read-write open falls back to read-only
_FALLBACK = ("SQLITE_IOERR", "SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")
FULL, READ_ONLY = "full", "read-only"  # why a store was opened read-only


def _error_name(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def _setup(conn: sqlite3.Connection, writable: bool) -> sqlite3.Connection:
    if writable:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file (and its shared memory) now
    return conn


def _open(target: str, uri: bool, writable: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        return _setup(conn, writable)
    except BaseException:
        conn.close()
        raise


def connect(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """A connection to the store at ``path`` (WAL, autocommit) and why it is read-only (``None``: it is not;
    :data:`FULL` or :data:`READ_ONLY`). Raises :class:`CatalogDamagedError` for a file SQLite cannot read as a
    database, :class:`CatalogError` when not even a read-only connection opens."""
    try:
        return _open(str(path), False, True), None
    except sqlite3.DatabaseError as exc:
        name = _error_name(exc)
        if not name.startswith(_FALLBACK):
            raise _open_error(path, exc) from exc
        first = exc
    why = FULL if is_disk_full(first) or _error_name(first).startswith("SQLITE_IOERR") else READ_ONLY
    base = "file:" + pathname2url(str(path.resolve()))
    tries = [f"{base}?mode=ro"]
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() or wal.stat().st_size == 0:  # committed work waiting in the log would be missed
        tries.append(f"{base}?immutable=1")
    for target in tries:
        try:
            conn = _open(target, True, False)
        except sqlite3.DatabaseError:
            continue
        log.warning("product store %s opened read-only (%s): %s", path, why, first)
        return conn, why
    raise _open_error(path, first) from first


def _open_error(path: Path, exc: BaseException) -> LookalikeError:
    if is_disk_full(exc) or _error_name(exc).startswith("SQLITE_IOERR"):
        return StorageFullError(f"cannot open product store {path}: {exc} (is the disk full?)")
    if damaged(exc):
        return CatalogDamagedError(f"product store {path} is damaged: {exc} (lookalike check lists what is wrong)")
    return CatalogError(f"cannot open product store {path}: {exc}")


def damaged(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the file is damaged or not a database."""
    name = _error_name(exc)
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(exc)


def read_only_error(why: str, path: Path) -> LookalikeError:
    """What a write to a store opened read-only (``why``) raises."""
    if why == FULL:
        return StorageFullError(f"the disk holding {path} is full (the catalogue was opened read-only): free space")
    return CatalogError(f"the catalogue at {path.parent} is read-only (its folder or files cannot be written)")


def schema_missing(conn: sqlite3.Connection, schema: str) -> bool:
    """Whether a table or index of ``schema`` (``CREATE ... IF NOT EXISTS name``) or the ``seq`` row is missing:
    only then does opening the store write."""
    wanted = {m.lower() for m in _NAMES.findall(schema)}
    have = {str(r[0]).lower() for r in conn.execute("SELECT name FROM sqlite_master")}
    if not wanted <= have:
        return True
    if "meta" in wanted:
        return conn.execute("SELECT 1 FROM meta WHERE key = 'seq'").fetchone() is None
    return False


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the transaction of a failed write, if SQLite has not already (it does on SQLITE_FULL)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def raise_if_full(exc: BaseException, what: str = "writing to the product store") -> None:
    """Raise :class:`StorageFullError` (from ``exc``) when ``exc`` says the disk is full; else nothing."""
    if isinstance(exc, StorageFullError):
        return
    if isinstance(exc, Exception) and is_disk_full(exc):
        raise full_disk_error(exc, what) from exc


def quick_check(conn: sqlite3.Connection, limit: int = 20) -> list[str]:
    """``PRAGMA quick_check``: the problems SQLite finds in the store's pages (at most ``limit``); empty when
    the store is sound."""
    try:
        rows = conn.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [f"product store: {exc}"]
    lines = [line for r in rows for line in str(r[0]).splitlines()]
    return [f"product store: {p}" for p in lines if p != "ok" and not p.startswith("*** in database")]
