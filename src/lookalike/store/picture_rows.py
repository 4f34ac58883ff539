"""The ``pictures`` table of the SQLite store: every picture of every product, with its vector.

A product has one or more pictures, in order (position 0 is its main picture). Each picture row is keyed by
``product row id × MAX_PICTURES + position`` (the id the vector index knows it by), so a picture id says its
product (``id // MAX_PICTURES``) and position (``id % MAX_PICTURES``) without a lookup, and a filter's product
row ids become picture ids by arithmetic (:func:`picture_ids`). Each row records the ``seq`` at which its
vector last changed; a picture that goes leaves a tombstone, as a deleted product does.

:func:`upgrade` brings a store made by an earlier release (one ``vectors`` row per product, keyed by the
product's row id) to this layout in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lookalike.backends.base import MAX_PICTURES, StoredPicture

__all__ = [
    "MAX_PICTURES",
    "PICTURES_SCHEMA",
    "PictureReads",
    "delete_pictures",
    "picture_ids",
    "picture_states",
    "product_rowids",
    "upgrade",
    "write_pictures",
]

PICTURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pictures (
    rowid INTEGER PRIMARY KEY, product INTEGER NOT NULL, position INTEGER NOT NULL,
    image TEXT, image_sha TEXT, image_file TEXT, vec BLOB NOT NULL, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pictures_seq ON pictures(seq);
CREATE INDEX IF NOT EXISTS pictures_product ON pictures(product);
CREATE INDEX IF NOT EXISTS pictures_file ON pictures(image_file);
"""
_NEW_COLUMNS = (("images", "TEXT"), ("in_stock", "INTEGER"), ("n_pictures", "INTEGER NOT NULL DEFAULT 1"))


def _chunks(items: list[Any], size: int = 900) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def picture_ids(rowids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The picture ids of products ``rowids`` holding ``counts`` pictures each."""
    rowids = np.asarray(rowids, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if rowids.size == 0:
        return rowids
    if int(counts.max()) <= 1:
        return rowids * MAX_PICTURES
    base = np.repeat(rowids * MAX_PICTURES, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return base + (np.arange(base.size, dtype=np.int64) - starts)


def product_rowids(ids: np.ndarray) -> np.ndarray:
    """The product row id of each picture id (-1 stays -1)."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.where(ids >= 0, ids // MAX_PICTURES, -1)


def needs_upgrade(conn: sqlite3.Connection) -> bool:
    """Whether the store was made by an earlier release (a ``vectors`` table, product columns missing)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(products)")}
    old = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'").fetchone()
    return old is not None or not {c for c, _ in _NEW_COLUMNS} <= cols


def upgrade(conn: sqlite3.Connection) -> bool:
    """Move an earlier release's store to this layout (one transaction; True when it did): the product columns
    ``images``, ``in_stock`` and ``n_pictures`` added, each product's vector moved to its one picture row (the
    main picture's source, hash and file), and the index told to rebuild (``index_min_seq``: the index
    checkpoints of the old layout are not loaded)."""
    if not needs_upgrade(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(products)")}
        for name, decl in _NEW_COLUMNS:
            if name not in cols:
                conn.execute(f"ALTER TABLE products ADD COLUMN {name} {decl}")
        old = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'").fetchone()
        if old is not None:
            seq = int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]) + 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
            conn.execute(
                "INSERT OR REPLACE INTO pictures(rowid, product, position, image, image_sha, image_file, vec, seq) "
                "SELECT p.rowid * ?, p.rowid, 0, p.image, p.image_sha, p.image_file, v.vec, ? "
                "FROM products p JOIN vectors v ON v.rowid = p.rowid",
                (MAX_PICTURES, seq),
            )
            conn.execute("DROP TABLE vectors")
            conn.execute("DELETE FROM tombstones")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('index_min_seq', ?)", (str(seq),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


def write_pictures(
    conn: sqlite3.Connection, seq: int, rowid: int, pictures: Sequence[StoredPicture], blobs: Sequence[bytes]
) -> list[int]:
    """Write product ``rowid``'s pictures (``pictures[i]`` with vector ``blobs[i]``) at ``seq``, replacing the
    ones it had; returns the ids of the pictures it no longer has (to tombstone)."""
    gone = [
        int(r[0])
        for r in conn.execute("SELECT rowid FROM pictures WHERE product = ? AND position >= ?", (rowid, len(blobs)))
    ]
    if gone:
        conn.executemany("DELETE FROM pictures WHERE rowid = ?", [(g,) for g in gone])
    conn.executemany(
        "INSERT OR REPLACE INTO pictures(rowid, product, position, image, image_sha, image_file, vec, seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (rowid * MAX_PICTURES + i, rowid, i, pic.image, pic.image_sha, pic.image_file, blob, seq)
            for i, (pic, blob) in enumerate(zip(pictures, blobs, strict=True))
        ],
    )
    return gone


def delete_pictures(conn: sqlite3.Connection, rowids: Sequence[int]) -> tuple[list[int], list[str]]:
    """Delete every picture of products ``rowids``: (their picture ids, their stored files)."""
    ids: list[int] = []
    files: list[str] = []
    for chunk in _chunks(list(rowids)):
        marks = ",".join("?" * len(chunk))
        for pid, file in conn.execute(f"SELECT rowid, image_file FROM pictures WHERE product IN ({marks})", chunk):
            ids.append(int(pid))
            if file:
                files.append(file)
        conn.execute(f"DELETE FROM pictures WHERE product IN ({marks})", chunk)
    return ids, files


def picture_states(conn: sqlite3.Connection, product_ids: Sequence[str]) -> dict[str, list[StoredPicture]]:
    """Each product's stored pictures, in order (products without any are left out)."""
    out: dict[str, list[StoredPicture]] = {}
    for chunk in _chunks(list(product_ids), 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT p.id, x.image, x.image_sha, x.image_file FROM pictures x JOIN products p ON p.rowid = x.product "
            f"WHERE p.id IN ({marks}) ORDER BY x.product, x.position",
            chunk,
        )
        for pid, image, sha, file in rows:
            out.setdefault(pid, []).append(StoredPicture(image, sha, file))
    return out


class PictureReads:
    """The store's reads of pictures and their vectors (a mixin of
    :class:`~lookalike.store.sqlite.ProductStore`: it needs ``_conn()`` and ``dim``)."""

    dim: int

    def _conn(self) -> sqlite3.Connection:  # pragma: no cover - the store's
        raise NotImplementedError

    def picture_file_of(self, product_id: str, position: int) -> str | None:
        """The stored file of a product's picture at ``position`` (None: no such picture)."""
        row = (
            self._conn()
            .execute(
                "SELECT x.image_file FROM pictures x JOIN products p ON p.rowid = x.product "
                "WHERE p.id = ? AND x.position = ?",
                (product_id, int(position)),
            )
            .fetchone()
        )
        return row[0] if row else None

    def picture_count(self) -> int:
        """How many pictures the catalogue holds (each with its vector)."""
        return int(self._conn().execute("SELECT COUNT(*) FROM pictures").fetchone()[0])

    def picture_counts(self, rowids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(product row ids, how many pictures each has): of ``rowids`` (in their order), or of every product."""
        conn = self._conn()
        if rowids is None:
            rows = conn.execute("SELECT rowid, n_pictures FROM products").fetchall()
        else:
            rows = []
            for chunk in _chunks([int(r) for r in rowids]):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT rowid, n_pictures FROM products WHERE rowid IN ({marks})"
                rows += conn.execute(sql, chunk).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        counts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        return ids, counts

    def max_pictures(self) -> int:
        """The most pictures any product has (1 for an empty catalogue)."""
        row = self._conn().execute("SELECT MAX(n_pictures) FROM products").fetchone()
        return int(row[0] or 1)

    def vector_of(self, product_id: str) -> np.ndarray | None:
        """The vector of a product's main picture."""
        return self.vectors_of([product_id]).get(product_id)

    def vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vector of each product's main picture."""
        return {pid: v[0] for pid, v in self.picture_vectors_of(product_ids, main_only=True).items()}

    def picture_vectors_of(self, product_ids: Sequence[str], main_only: bool = False) -> dict[str, np.ndarray]:
        """Every picture's vector of each product, (n, dim) in picture order (``main_only``: the first)."""
        found: dict[str, list[bytes]] = {}
        conn = self._conn()
        only = " AND x.position = 0" if main_only else ""
        for chunk in _chunks(list(product_ids), 500):
            marks = ",".join("?" * len(chunk))
            for pid, vec in conn.execute(
                f"SELECT p.id, x.vec FROM pictures x JOIN products p ON p.rowid = x.product "
                f"WHERE p.id IN ({marks}){only} ORDER BY x.product, x.position",
                chunk,
            ):
                found.setdefault(pid, []).append(vec)
        return {
            pid: np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), self.dim).copy()
            for pid, blobs in found.items()
        }
