"""The word index's BM25 from memory: FTS5's own ``bm25()`` of a words query, added up in numpy.

FTS5 answers ``MATCH '"navy" OR "shirt"' ORDER BY bm25(...) LIMIT 50`` by scoring every product that has any
of the words (about 9,000 of 44k for a typical phrase), each score a look-up of the product's length: about
9 ms a query on a quiet machine, the largest part of a words query (docs/performance.md, "Words query at 44k").
Those scores only change with the catalogue, so :class:`WordScores` keeps, per store state (the store's
``seq`` and the index's totals), every product's length and, for each word a query has used, the products
that have it with their share of the score. A query then adds a few arrays and takes the top ``k``.

The arithmetic is FTS5's (``fts5_aux.c``: k1 1.2, b 0.75, IDF ``log((N - n + 0.5) / (n + 0.5))`` floored at
1e-6, each phrase's term added in the query's word order) in the same float64 operations, so the scores are
the very numbers ``bm25()`` gives and ties go to the lower row id, as with ``ORDER BY bm25(products_fts),
rowid`` (tests/test_text_search.py compares the two). Query words are stemmed by the index's own tokenizer (a
temporary FTS5 table on the connection); a word it splits into several tokens makes :meth:`WordScores.search`
answer None, and the caller asks FTS5 instead.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.store.text_index import MAX_DOC_FRACTION, TOKENIZE, match_words, query_words

__all__ = ["BM25_B", "BM25_K1", "WordScores", "read_varints"]

#: FTS5's bm25() constants.
BM25_K1 = 1.2
BM25_B = 0.75
_TEMP = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.lookalike_stem USING fts5(w, tokenize='{TOKENIZE}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lookalike_stem_v USING fts5vocab(temp, lookalike_stem, instance)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lookalike_vocab USING fts5vocab(main, products_fts, instance)",
)
_MAX_STEMS = 100_000


def _temp_tables(conn: sqlite3.Connection) -> None:
    """This connection's temporary tables: a one-column FTS5 table with the index's tokenizer (to stem query
    words) and ``fts5vocab`` views of it and of the word index (a word's products and counts)."""
    for sql in _TEMP:
        conn.execute(sql)  # a no-op once this connection has them


def read_varints(blob: bytes) -> list[int]:
    """The SQLite varints of ``blob`` (FTS5's record format: big-endian 7-bit groups, a ninth byte of 8)."""
    out: list[int] = []
    value, n = 0, 0
    for byte in blob:
        if n == 8:
            out.append((value << 8) | byte)
            value, n = 0, 0
            continue
        value, n = (value << 7) | (byte & 0x7F), n + 1
        if not byte & 0x80:
            out.append(value)
            value, n = 0, 0
    return out


def _lengths(blobs: Sequence[bytes]) -> np.ndarray:
    """Each product's length in tokens (all columns) from its ``products_fts_docsize`` record."""
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    if raw.size and int(raw.max()) < 0x80:  # every column under 128 tokens: one byte each
        sizes = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out = np.add.reduceat(raw.astype(np.int64), starts) if raw.size else np.zeros(0, dtype=np.int64)
        return np.where(sizes > 0, out, 0).astype(np.float64)
    return np.array([float(sum(read_varints(b))) for b in blobs], dtype=np.float64)


@dataclass
class _State:
    """One store state: the products' row ids (ascending) and lengths, the index's totals, the words met."""

    key: tuple[int, bytes]
    rowids: np.ndarray
    lengths: np.ndarray
    n_rows: int
    avgdl: float
    #: stem → (positions in ``rowids`` of the products that have it, their BM25 term), least recent first.
    terms: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=OrderedDict)
    entries: int = 0


class WordScores:
    """FTS5 BM25 of words queries from memory, for one store (shared by its connections; thread-safe).
    ``max_entries``: how many (word, product) pairs it keeps at most (16 bytes each)."""

    def __init__(self, max_entries: int = 4_000_000) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._stems: dict[str, str | None] = {}
        self._state: _State | None = None

    def search(
        self, conn: sqlite3.Connection, text: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]] | None:
        """Top ``k`` (row id, BM25 score; higher is better) for ``text`` among the row ids ``allowed`` (None:
        all), as :func:`~lookalike.store.text_index.search_text_rows` gives them; None when a word is not one
        token of the index's tokenizer (ask FTS5)."""
        words = query_words(text)
        if not words or k < 1:
            return []
        with self._lock:
            self._stem(conn, words)
            stems = [self._stems[w] for w in words]
            if any(s is None for s in stems):
                return None
            rowids, terms = self._terms(conn, [s for s in stems if s is not None])
        if len(words) > 1 and MAX_DOC_FRACTION < 1:
            counts = {w: len(terms[i][0]) for i, w in enumerate(words)}
            keep = set(match_words(words, counts, rowids.size))
            terms = [t for w, t in zip(words, terms, strict=True) if w in keep]
        return _top(rowids, terms, k, allowed)

    # --- the parts ----------------------------------------------------------------------------------
    def _stem(self, conn: sqlite3.Connection, words: Sequence[str]) -> None:
        new = [w for w in words if w not in self._stems]
        if not new:
            return
        if len(self._stems) > _MAX_STEMS:
            self._stems.clear()
        _temp_tables(conn)
        conn.executemany("INSERT INTO temp.lookalike_stem(rowid, w) VALUES (?, ?)", list(enumerate(new)))
        tokens: dict[int, list[str]] = {}
        for term, doc in conn.execute("SELECT term, doc FROM temp.lookalike_stem_v"):
            tokens.setdefault(int(doc), []).append(str(term))
        conn.execute("DELETE FROM temp.lookalike_stem")
        for i, w in enumerate(new):
            found = tokens.get(i, [])
            self._stems[w] = found[0] if len(found) == 1 else None

    def _terms(
        self, conn: sqlite3.Connection, stems: Sequence[str]
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """The state's row ids and each stem's (positions in them, terms), read in one snapshot."""
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            totals = conn.execute("SELECT block FROM products_fts_data WHERE id = 1").fetchone()
            key = (int(seq[0]) if seq else 0, bytes(totals[0]) if totals else b"")
            state = self._state
            if state is None or state.key != key:
                state = self._state = self._load(conn, key)
            out = []
            for stem in stems:
                hit = state.terms.get(stem)
                if hit is None:
                    hit = self._read_term(conn, state, stem)
                else:
                    state.terms.move_to_end(stem)
                out.append(hit)
        finally:
            if own:
                conn.execute("COMMIT")
        return state.rowids, out

    @staticmethod
    def _load(conn: sqlite3.Connection, key: tuple[int, bytes]) -> _State:
        rows = conn.execute("SELECT id, sz FROM products_fts_docsize ORDER BY id").fetchall()
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        lengths = _lengths([bytes(r[1]) for r in rows])
        totals = read_varints(key[1]) if key[1] else [0]
        n_rows, n_tokens = totals[0], sum(totals[1:])
        return _State(key, rowids, lengths, n_rows, n_tokens / n_rows if n_rows else 0.0)

    def _read_term(self, conn: sqlite3.Connection, state: _State, stem: str) -> tuple[np.ndarray, np.ndarray]:
        sql = "SELECT doc, count(*) FROM temp.lookalike_vocab WHERE term = ? GROUP BY doc ORDER BY doc"
        try:
            rows = conn.execute(sql, (stem,)).fetchall()
        except sqlite3.OperationalError:  # a connection that has not made its temporary tables yet
            _temp_tables(conn)
            rows = conn.execute(sql, (stem,)).fetchall()
        docs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        freq = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        pos = np.searchsorted(state.rowids, docs)
        ok = pos < state.rowids.size
        ok[ok] = state.rowids[pos[ok]] == docs[ok]
        pos, freq = pos[ok], freq[ok]
        n_hit = len(rows)
        idf = math.log((state.n_rows - n_hit + 0.5) / (n_hit + 0.5)) if state.n_rows else 0.0
        if idf <= 0.0:
            idf = 1e-6
        k1, b, size = BM25_K1, BM25_B, state.lengths[pos]
        # fts5_aux.c's expression, operation for operation: the same float64 roundings
        term = idf * ((freq * (k1 + 1.0)) / (freq + k1 * (1 - b + b * size / state.avgdl)))
        state.terms[stem] = (pos, term)
        state.entries += pos.size
        while state.entries > self.max_entries and len(state.terms) > 1:
            _, (old, _) = state.terms.popitem(last=False)
            state.entries -= old.size
        return pos, term


def _top(
    rowids: np.ndarray, terms: Sequence[tuple[np.ndarray, np.ndarray]], k: int, allowed: np.ndarray | None
) -> list[tuple[int, float]]:
    """The top ``k`` (row id, score) of the summed ``terms``, ties by row id; only ``allowed`` row ids."""
    score = np.zeros(rowids.size, dtype=np.float64)
    for pos, term in terms:  # in the query's word order, as bm25() sums its phrases
        score[pos] += term
    if allowed is not None:
        wanted = np.asarray(allowed, dtype=np.int64)
        at = np.searchsorted(rowids, wanted)
        inside = at < rowids.size
        at, wanted = at[inside], wanted[inside]
        keep = np.zeros(rowids.size, dtype=bool)
        keep[at[rowids[at] == wanted]] = True
        score[~keep] = 0.0
    found = np.flatnonzero(score)  # every product with a word scores above 0 (IDF >= 1e-6)
    if found.size > k:
        s = score[found]
        kth = np.partition(s, s.size - k)[s.size - k]
        found = found[s >= kth]
    order = found[np.lexsort((found, -score[found]))][:k]  # positions ascend with row ids
    return [(int(rowids[i]), float(score[i])) for i in order]
