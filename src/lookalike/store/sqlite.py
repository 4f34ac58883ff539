"""SQLite product store: metadata, the pictures of each product with their embeddings, and a change sequence.

SQLite is the source of truth. Every write transaction bumps a sequence number ``seq``; each picture
row records the ``seq`` at which its vector last changed and each deleted picture leaves a tombstone with
its ``seq`` (:mod:`lookalike.store.picture_rows`: a product's pictures and how the index numbers them).
An index (FAISS, in memory and checkpointed to disk) knows the ``seq`` it reflects and
catches up with :meth:`ProductStore.changes_since`, so a crash between the SQLite commit and an index
write loses nothing, and a server sees another process's ingest without a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import StoredPicture, StoredState, UpsertItem
from lookalike.errors import CatalogError
from lookalike.product import FILTER_FIELDS, Filters, Product
from lookalike.store.facet_counts import facet_counts
from lookalike.store.health import connect, quick_check, raise_if_full, read_only_error, rollback, schema_missing
from lookalike.store.picture_rows import (
    MAX_PICTURES,
    PICTURES_SCHEMA,
    PictureReads,
    delete_pictures,
    picture_states,
    upgrade,
    write_pictures,
)
from lookalike.store.rows import PRODUCT_COLUMNS, SearchRows, images_text, read_products
from lookalike.store.rows import row_to_product as _row_to_product
from lookalike.store.text_index import (
    TermStats,
    delete_text_rows,
    ensure_text_index,
    search_text_rows,
    write_text_rows,
)
from lookalike.store.word_scores import WordScores

__all__ = ["Changes", "ProductStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    title TEXT, brand TEXT, category TEXT, subcategory TEXT, article_type TEXT,
    colour TEXT, gender TEXT, price REAL,
    image TEXT, url TEXT, extra TEXT NOT NULL DEFAULT '{}',
    image_sha TEXT, image_file TEXT, meta_hash TEXT,
    seq INTEGER NOT NULL, vec_seq INTEGER NOT NULL,
    images TEXT, in_stock INTEGER, n_pictures INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS tombstones (rowid INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_errors (
    id TEXT PRIMARY KEY, image TEXT, error TEXT NOT NULL, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS products_vec_seq ON products(vec_seq);
CREATE INDEX IF NOT EXISTS tombstones_seq ON tombstones(seq);
CREATE INDEX IF NOT EXISTS products_article_type ON products(article_type COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS products_category ON products(category COLLATE NOCASE);
"""
SCHEMA += PICTURES_SCHEMA


@dataclass
class Changes:
    """Index changes since a sequence number."""

    seq: int
    removed: np.ndarray
    upsert_ids: np.ndarray
    upsert_vectors: np.ndarray


class ProductStore(PictureReads):
    """Thread-safe access to ``products.db`` (one connection per thread, WAL mode). ``write_guard``, when set, runs
    inside every write transaction once it holds SQLite's write lock, and may refuse the write by raising (a
    catalogue generation that no longer serves: :mod:`lookalike.catalog.generations`)."""

    write_guard: Callable[[], None] | None = None

    def __init__(self, path: str | Path, dim: int, create: bool = False) -> None:
        self.path = Path(path)
        self.dim = dim
        if not create and not self.path.exists():
            raise CatalogError(f"product store missing: {self.path}")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._word_scores, self._search_rows = WordScores(), SearchRows()
        conn = self._conn()
        with self._write_lock:
            if schema_missing(conn, SCHEMA):  # an existing store opens without writing (a full disk reads on)
                conn.executescript(SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('seq', '0')")
            upgrade(conn)  # a store of an earlier release: several pictures per product
            ensure_text_index(conn, _row_to_product)

    # --- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn, self._local.read_only = connect(self.path)  # read-only when it cannot write (store/health.py)
            conn.row_factory = sqlite3.Row
            self._local.conn, self._local.term_stats = conn, TermStats()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- reads ---------------------------------------------------------------------------------
    def seq(self) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key='seq'").fetchone()
        return int(row[0])

    def count(self, filters: Filters | None = None) -> int:
        where, params = self._where(filters)
        return int(self._conn().execute(f"SELECT COUNT(*) FROM products {where}", params).fetchone()[0])

    def get(self, product_id: str) -> Product | None:
        row = self._conn().execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
        return _row_to_product(row) if row else None

    def rowid_of(self, product_id: str) -> int | None:
        row = self._conn().execute("SELECT rowid FROM products WHERE id = ?", (product_id,)).fetchone()
        return int(row[0]) if row else None

    def image_file_of(self, product_id: str) -> str | None:
        row = self._conn().execute("SELECT image_file FROM products WHERE id = ?", (product_id,)).fetchone()
        return row[0] if row else None

    def states(self, product_ids: Sequence[str]) -> dict[str, StoredState]:
        out: dict[str, StoredState] = {}
        conn = self._conn()
        pictures = picture_states(conn, product_ids)
        for chunk in _chunks(list(product_ids), 500):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT rowid, id, image, image_sha, meta_hash, image_file FROM products WHERE id IN ({marks})",
                chunk,
            ):
                pid = row["id"]
                out[pid] = StoredState(
                    row["image"], row["image_sha"], row["meta_hash"], row["image_file"], tuple(pictures.get(pid, ()))
                )
        return out

    def products_by_rowid(self, rowids: Iterable[int]) -> dict[int, Product]:
        """The products of ``rowids`` that exist; the rows read are kept for the next search at this store state and
        for :meth:`picture_hashes` (:class:`~lookalike.store.rows.SearchRows`)."""
        return read_products(self._conn(), [int(r) for r in rowids], self.seq(), self._search_rows)

    def picture_hashes(self, product_ids: Sequence[str]) -> dict[str, str | None]:
        """The picture hash (None: none stored) of each of ``product_ids`` that exists; those a search has
        just read come from memory (:mod:`lookalike.store.rows`)."""
        return self._search_rows.lookup(self._conn(), self.seq(), list(product_ids))

    def list(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> list[Product]:
        where, params = self._where(filters)
        rows = self._conn().execute(
            f"SELECT * FROM products {where} ORDER BY rowid LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [_row_to_product(r) for r in rows]

    def iter_ids(self) -> Iterator[str]:
        for row in self._conn().execute("SELECT id FROM products ORDER BY rowid"):
            yield row[0]

    def text_rowids(self, text: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (row id, BM25 score) of the word index for ``text`` among the products that pass
        ``filters`` (:mod:`lookalike.store.text_index`; from memory: :mod:`lookalike.store.word_scores`)."""
        conn = self._conn()  # its remembered word counts go with it
        found = self._word_scores.search(conn, text, k, self.allowed_rowids(filters))
        if found is not None:
            return found
        where, params = self._where(filters)
        return search_text_rows(conn, text, k, where, params, self._local.term_stats)

    def allowed_rowids(self, filters: Filters | None) -> np.ndarray | None:
        """:meth:`filter_rowids` for this store's own searches (the embedded backend remembers them)."""
        return self.filter_rowids(filters)

    def filter_rowids(self, filters: Filters | None) -> np.ndarray | None:
        """Row ids that pass ``filters``; ``None`` when there is no filter (everything passes)."""
        if filters is None or filters.is_empty():
            return None
        where, params = self._where(filters)
        rows = self._conn().execute(f"SELECT rowid FROM products {where}", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def facets(
        self, fields: Sequence[str] = FILTER_FIELDS, filters: Filters | None = None
    ) -> dict[str, list[tuple[Any, Any]]]:
        """Each field's distinct values with counts, the price range and the stock counts
        (:func:`lookalike.store.facet_counts.facet_counts`)."""
        return facet_counts(self._conn(), self._where, fields, filters)

    def changes_since(self, seq: int) -> Changes:
        """Every index change after ``seq`` at once (see :meth:`iter_changes` for large catch-ups)."""
        parts = list(self.iter_changes(seq))
        return Changes(
            parts[0].seq,
            parts[0].removed,
            np.concatenate([p.upsert_ids for p in parts]),
            np.concatenate([p.upsert_vectors for p in parts]),
        )

    def iter_changes(self, seq: int, chunk: int = 16384) -> Iterator[Changes]:
        """Index changes after ``seq`` from one consistent snapshot, in pieces of at most ``chunk``
        vectors (the first piece carries every removal), so a catch-up of a million vectors never holds
        them all in memory twice."""
        conn = self._conn()
        conn.execute("BEGIN")  # one consistent snapshot
        try:
            now = int(conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
            removed = np.asarray(
                [r[0] for r in conn.execute("SELECT rowid FROM tombstones WHERE seq > ?", (seq,))], dtype=np.int64
            )
            cur = conn.execute("SELECT rowid, vec FROM pictures WHERE seq > ? ORDER BY rowid", (seq,))
            first = True
            while True:
                rows = cur.fetchmany(chunk)
                if not rows and not first:
                    break
                ids, vecs = self._unpack(rows)
                yield Changes(now, removed if first else np.zeros((0,), dtype=np.int64), ids, vecs)
                first = False
                if len(rows) < chunk:
                    break
        finally:
            conn.execute("COMMIT")

    def _unpack(self, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(rowid, float32 blob) rows -> (ids, (n, dim) matrix)."""
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        return ids, vecs

    def rowids(self) -> np.ndarray:
        """Every picture's id (what the vector index holds)."""
        rows = self._conn().execute("SELECT rowid FROM pictures").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors_by_rowid(self, rowids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact stored vectors of ``rowids`` (those that exist): (ids, (n, dim) float32)."""
        wanted = [int(r) for r in rowids]
        conn = self._conn()
        rows: list[Any] = []
        for chunk in _chunks(wanted, 900):
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(f"SELECT rowid, vec FROM pictures WHERE rowid IN ({marks})", chunk).fetchall()
        return self._unpack(rows)

    def errors(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM ingest_errors ORDER BY at, id")]

    # --- writes --------------------------------------------------------------------------------
    def _begin(self) -> tuple[sqlite3.Connection, int]:
        conn = self._conn()
        if self._local.read_only:
            raise read_only_error(self._local.read_only, self.path)
        conn.execute("BEGIN IMMEDIATE")
        if self.write_guard is not None:
            try:
                self.write_guard()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        seq = int(conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0]) + 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
        return conn, seq

    def upsert(self, items: Sequence[UpsertItem], errors: Sequence[tuple[str, str | None, str]] = ()) -> int:
        """Insert or update ``items`` (and record ``errors``) in one transaction; returns the new seq."""
        with self._write_lock:
            conn, seq = self._begin()
            try:
                existing = self._rowids_of(conn, [it.product.id for it in items])
                texts: dict[int, Product] = {}
                gone: list[int] = []
                for item in items:
                    rowid = self._upsert_one(conn, seq, item, existing.get(item.product.id))
                    existing[item.product.id] = rowid  # the same id twice in a batch: the second updates
                    texts[rowid] = item.product
                    vecs = item.vectors()
                    if vecs is not None:
                        pictures = item.picture_rows()[:MAX_PICTURES]
                        blobs = [self._vector_blob(v) for v in vecs[:MAX_PICTURES]]
                        gone += write_pictures(conn, seq, rowid, pictures, blobs)
                write_text_rows(conn, texts.items())
                conn.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?)", [(g, seq) for g in gone])
                conn.executemany("DELETE FROM ingest_errors WHERE id = ?", [(it.product.id,) for it in items])
                conn.executemany(
                    "INSERT OR REPLACE INTO ingest_errors(id, image, error) VALUES (?, ?, ?)", list(errors)
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                rollback(conn)  # SQLite has already rolled back on a full disk
                raise_if_full(exc)
                raise
        return seq

    @staticmethod
    def _rowids_of(conn: sqlite3.Connection, product_ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(product_ids, 900):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT id, rowid FROM products WHERE id IN ({marks})", chunk):
                out[row[0]] = int(row[1])
        return out

    def _vector_blob(self, vector: np.ndarray) -> bytes:
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise CatalogError(f"embedding has dimension {vec.shape[0]}, catalogue expects {self.dim}")
        return vec.tobytes()

    def _upsert_one(self, conn: sqlite3.Connection, seq: int, item: UpsertItem, rowid: int | None) -> int:
        """Write one product row (not its vector); returns its row id."""
        p = item.product
        vecs = item.vectors()
        pictures = item.picture_rows()[:MAX_PICTURES] if vecs is not None else []
        if pictures:  # the stored row names the pictures written (a picture past MAX_PICTURES is not kept)
            images = [pic.image for pic in pictures if pic.image]
            main = pictures[0]
        else:
            images, main = list(p.images), StoredPicture(p.image, item.image_sha, item.image_file)
        stock = None if p.in_stock is None else int(p.in_stock)
        values = (
            p.id, p.title, p.brand, p.category, p.subcategory, p.article_type, p.colour, p.gender,
            p.price, images[0] if images else p.image, p.url, json.dumps(p.extra or {}, default=str),
            images_text(images), stock,
        )  # fmt: skip
        if rowid is None:
            if vecs is None or not len(vecs):
                raise CatalogError(f"product {p.id!r} is new and has no embedding")
            for v in vecs:
                self._vector_blob(v)  # check the dimension before writing anything
            cur = conn.execute(
                f"INSERT INTO products({', '.join(PRODUCT_COLUMNS)}, image_sha, image_file, meta_hash, seq, vec_seq,"
                f" n_pictures) VALUES ({', '.join('?' * len(PRODUCT_COLUMNS))}, ?, ?, ?, ?, ?, ?)",
                (*values, main.image_sha, main.image_file, p.metadata_hash(), seq, seq, len(pictures)),
            )
            return int(cur.lastrowid or 0)
        if vecs is None:
            # metadata only: the pictures stay, and so does what the row says of them when the product names none
            cols = [c for c in PRODUCT_COLUMNS if p.images or c not in ("image", "images")]
            vals = [v for c, v in zip(PRODUCT_COLUMNS, values, strict=True) if c in cols]
            sets = ", ".join(f"{c} = ?" for c in cols)
            conn.execute(
                f"UPDATE products SET {sets}, meta_hash = ?, seq = ? WHERE rowid = ?",
                (*vals, p.metadata_hash(), seq, rowid),
            )
        else:
            sets = ", ".join(f"{c} = ?" for c in PRODUCT_COLUMNS)
            conn.execute(
                f"UPDATE products SET {sets}, image_sha = ?, image_file = ?, meta_hash = ?, seq = ?, "
                "vec_seq = ?, n_pictures = ? WHERE rowid = ?",
                (*values, main.image_sha, main.image_file, p.metadata_hash(), seq, seq, len(pictures), rowid),
            )
        return rowid

    def delete_rows(self, product_ids: Sequence[str]) -> tuple[list[int], list[str]]:
        """Delete products; returns (their row ids, their image files) for the index and file cleanup."""
        with self._write_lock:
            conn, seq = self._begin()
            try:
                rowids: list[int] = []
                for chunk in _chunks(list(product_ids), 500):
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(f"SELECT rowid FROM products WHERE id IN ({marks})", chunk).fetchall()
                    rowids += [int(row[0]) for row in rows]
                    conn.execute(f"DELETE FROM products WHERE id IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM ingest_errors WHERE id IN ({marks})", chunk)
                picture_ids, files = delete_pictures(conn, rowids)
                delete_text_rows(conn, rowids)
                conn.executemany(
                    "INSERT OR REPLACE INTO tombstones(rowid, seq) VALUES (?, ?)", [(r, seq) for r in picture_ids]
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                rollback(conn)  # SQLite has already rolled back on a full disk
                raise_if_full(exc)
                raise
        return rowids, files

    def image_file_in_use(self, image_file: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM pictures WHERE image_file = ? LIMIT 1", (image_file,)).fetchone()
        return row is not None

    def quick_check(self) -> list[str]:
        """What SQLite's ``PRAGMA quick_check`` finds wrong in the store's pages (empty: sound); reads them all."""
        return quick_check(self._conn())

    # --- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _where(filters: Filters | None) -> tuple[str, list[Any]]:
        if filters is None or filters.is_empty():
            return "", []
        clauses: list[str] = []
        params: list[Any] = []
        for name in FILTER_FIELDS:
            value = getattr(filters, name)
            if value in (None, "", ()):
                continue
            values = [value] if isinstance(value, str) else list(value)
            clauses.append(f"{name} COLLATE NOCASE IN ({','.join('?' * len(values))})")
            params.extend(str(v) for v in values)
        if filters.min_price is not None:
            clauses.append("price >= ?")
            params.append(float(filters.min_price))
        if filters.max_price is not None:
            clauses.append("price <= ?")
            params.append(float(filters.max_price))
        if filters.in_stock is not None:
            clauses.append("(in_stock IS NULL OR in_stock != 0)" if filters.in_stock else "in_stock = 0")
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
