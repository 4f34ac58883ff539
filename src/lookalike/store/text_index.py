"""The product store's word index: an SQLite FTS5 table over each product's text, searched by BM25.

One row per product (``rowid`` = the product's row id) with its title, brand, article type, colour (with
its family name: "Navy Blue blue", via :func:`lookalike.colour.family_of`), gender, category, subcategory
and the string values of ``extra`` (the picture's predicted colour left out: a guess is not the shop's
word). The store writes it in the same transaction as the product row (:func:`write_text_rows`,
:func:`delete_text_rows`), so the two cannot drift; a catalogue made before the index existed (or with an
older :data:`TEXT_INDEX_VERSION`) gets it built on open (:func:`ensure_text_index`, a one-row check).

A user's words never reach FTS5's query syntax: :func:`match_query` keeps the word characters of each
token, quotes every token and ORs them, so ``"``, ``AND(``, ``*`` or ``NEAR`` are plain words or nothing.
Tokenizer: ``porter unicode61`` (case and accents folded, English plurals stemmed: "sneakers" = "sneaker").

Words that many products have ("men", "casual", "black": more than :data:`MAX_DOC_FRACTION` of the
catalogue) are left out of the match query when the phrase has a rarer one: their BM25 weight (IDF) is
small, yet FTS5 scores every product that matches the OR before the LIMIT, so one of them costs tens of
milliseconds at 44k products (docs/quality.md, "Latency of a words query"). Document frequencies come
from FTS5 itself (a count per word) and are remembered per connection until the database changes
(:class:`TermStats`). The store answers from memory first (:mod:`lookalike.store.word_scores`: the same BM25
numbers without FTS5's per-match work); :func:`search_text_rows` is the FTS5 query it falls back to.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lookalike.colour.families import family_of
from lookalike.product import PREDICTED_COLOUR, Product

__all__ = [
    "MAX_DOC_FRACTION",
    "TEXT_INDEX_VERSION",
    "TOKENIZE",
    "TermStats",
    "delete_text_rows",
    "ensure_text_index",
    "match_query",
    "match_words",
    "product_document",
    "query_words",
    "search_text_rows",
    "write_text_rows",
]

#: Bumped when the table's columns or tokenizer change; a store with another version is re-indexed on open.
TEXT_INDEX_VERSION = "1"
TEXT_COLUMNS = ("title", "brand", "article_type", "colour", "gender", "category", "subcategory", "extra")
#: The word index's tokenizer (:mod:`lookalike.store.word_scores` stems query words with it too).
TOKENIZE = "porter unicode61 remove_diacritics 2"
_CREATE = f"CREATE VIRTUAL TABLE products_fts USING fts5({', '.join(TEXT_COLUMNS)}, tokenize='{TOKENIZE}')"
_INSERT = f"INSERT INTO products_fts(rowid, {', '.join(TEXT_COLUMNS)}) VALUES (?{', ?' * len(TEXT_COLUMNS)})"
_WORD = re.compile(r"\w+", re.UNICODE)
#: Words that name nothing a product has (a phrase's glue); dropped from the match query.
STOPWORDS = frozenset(
    {"a", "an", "and", "the", "for", "in", "on", "of", "with", "to", "by", "at", "or", "from", "my", "me", "i"}
    | {"want", "looking", "some", "any", "new", "like", "this", "that", "but"}
)
MAX_QUERY_WORDS = 32
#: A word found in more than this fraction of the products is dropped from the match query (the rarest word
#: of a phrase is always kept); 1.0: none is (off). 0.3 keeps the fused search's quality (phrase mP@10 -0.001)
#: and cuts p50 at 44k products from about 40 to 25 ms; 0.1 reached 14 ms but lost 0.010 phrase mP@10 and 0.015
#: title R@10 (docs/quality.md, "Latency of a words query").
MAX_DOC_FRACTION = 0.3


def _extra_text(extra: dict[str, Any] | None) -> str:
    parts: list[str] = []
    for key, value in (extra or {}).items():
        if key == PREDICTED_COLOUR:
            continue
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list | tuple):
            parts.extend(v for v in value if isinstance(v, str))
    return " ".join(parts)


def product_document(product: Product) -> tuple[str, ...]:
    """The text of a product, one string per column of :data:`TEXT_COLUMNS`."""
    colour = product.colour or ""
    fam = family_of(colour)
    if fam is not None and fam.casefold() not in colour.casefold():
        colour = f"{colour} {fam}"
    p = product
    return (
        p.title or "", p.brand or "", p.article_type or "", colour, p.gender or "",
        p.category or "", p.subcategory or "", _extra_text(p.extra),
    )  # fmt: skip


def query_words(text: str) -> list[str]:
    """The words of ``text`` a match query may use: letters and digits only, casefolded, stopwords and
    one-letter words dropped, each once, at most :data:`MAX_QUERY_WORDS`."""
    words: list[str] = []
    for w in _WORD.findall(text.casefold()):
        w = w.replace("_", "")
        if len(w) < 2 or w in STOPWORDS or w in words:
            continue
        words.append(w)
    return words[:MAX_QUERY_WORDS]


def match_words(
    words: Sequence[str], doc_counts: dict[str, int] | None = None, n_docs: int = 0, max_fraction: float | None = None
) -> list[str]:
    """The :func:`query_words` a match query ORs: with ``doc_counts`` (products per word) and ``n_docs``
    (products in all), a word in more than ``max_fraction`` (default :data:`MAX_DOC_FRACTION`) of them is
    left out, unless every word is: then the rarest one stays."""
    words = list(words)
    if words and doc_counts is not None and n_docs > 0:
        limit = (MAX_DOC_FRACTION if max_fraction is None else max_fraction) * n_docs
        rare = [w for w in words if doc_counts.get(w, 0) <= limit]
        words = rare or [min(words, key=lambda w: (doc_counts.get(w, 0), words.index(w)))]
    return words


def match_query(
    text: str, doc_counts: dict[str, int] | None = None, n_docs: int = 0, max_fraction: float | None = None
) -> str | None:
    """An FTS5 query for ``text``: its :func:`query_words` (those :func:`match_words` keeps), each quoted,
    OR-ed; None when no word is left."""
    words = match_words(query_words(text), doc_counts, n_docs, max_fraction)
    return " OR ".join(f'"{w}"' for w in words) if words else None


class TermStats:
    """Document frequencies of query words on one connection, remembered while the database is unchanged
    (SQLite's ``data_version`` for other connections' commits, ``total_changes`` for this one's writes)."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._n_docs = 0
        self._counts: dict[str, int] = {}

    def lookup(self, conn: sqlite3.Connection, words: Sequence[str]) -> tuple[dict[str, int], int]:
        """(products per word, products in all) for ``words`` on ``conn``."""
        key = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
        if key != self._key:
            self._key = key
            self._counts = {}
            self._n_docs = int(conn.execute("SELECT count(*) FROM products_fts_docsize").fetchone()[0])
        for w in words:
            if w not in self._counts:
                row = conn.execute("SELECT count(*) FROM products_fts WHERE products_fts MATCH ?", (f'"{w}"',))
                self._counts[w] = int(row.fetchone()[0])
        return self._counts, self._n_docs


def _has_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'products_fts'").fetchone()
    return row is not None


def ensure_text_index(conn: sqlite3.Connection, to_product: Callable[[sqlite3.Row], Product]) -> bool:
    """Create (or rebuild, for another :data:`TEXT_INDEX_VERSION`) the word index of the products already
    stored (``to_product`` reads a ``products`` row), in one write transaction; True when it was (re)built.
    Cheap when it is current (one row read)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'text_index'").fetchone()
    if row is not None and row[0] == TEXT_INDEX_VERSION and _has_table(conn):
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:  # a store opened read-only (a full disk): words search by FTS5 waits
        if str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_READONLY"):
            return False
        raise
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'text_index'").fetchone()
        if row is not None and row[0] == TEXT_INDEX_VERSION and _has_table(conn):
            conn.execute("COMMIT")
            return False  # another process built it meanwhile
        conn.execute("DROP TABLE IF EXISTS products_fts")
        conn.execute(_CREATE)
        cur = conn.execute("SELECT * FROM products ORDER BY rowid")
        while rows := cur.fetchmany(2048):
            conn.executemany(_INSERT, [(int(r["rowid"]), *product_document(to_product(r))) for r in rows])
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('text_index', ?)", (TEXT_INDEX_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself on a full disk
            conn.execute("ROLLBACK")
        raise
    return True


def write_text_rows(conn: sqlite3.Connection, rows: Iterable[tuple[int, Product]]) -> None:
    """(Re)index products by row id, inside the caller's transaction."""
    rows = list(rows)
    conn.executemany("DELETE FROM products_fts WHERE rowid = ?", [(r,) for r, _ in rows])
    conn.executemany(_INSERT, [(r, *product_document(p)) for r, p in rows])


def delete_text_rows(conn: sqlite3.Connection, rowids: Sequence[int]) -> None:
    """Drop products from the word index, inside the caller's transaction."""
    conn.executemany("DELETE FROM products_fts WHERE rowid = ?", [(int(r),) for r in rowids])


def search_text_rows(
    conn: sqlite3.Connection,
    text: str,
    k: int,
    where: str = "",
    params: Sequence[Any] = (),
    stats: TermStats | None = None,
) -> list[tuple[int, float]]:
    """Top ``k`` (row id, BM25 score; higher is better) for ``text``; ``where``/``params``: a
    ``WHERE`` clause over ``products`` the rows must pass (the store's filters); ``stats``: the
    connection's remembered document frequencies (a fresh count without). Empty for no words."""
    words = query_words(text)
    if not words or k < 1:
        return []
    counts, n_docs = (
        (stats or TermStats()).lookup(conn, words) if len(words) > 1 and MAX_DOC_FRACTION < 1 else (None, 0)
    )
    query = match_query(text, counts, n_docs)
    sql = "SELECT rowid, bm25(products_fts) FROM products_fts WHERE products_fts MATCH ?"
    if where:
        sql += f" AND rowid IN (SELECT rowid FROM products {where})"
    sql += " ORDER BY bm25(products_fts), rowid LIMIT ?"
    return [(int(r[0]), -float(r[1])) for r in conn.execute(sql, [query, *params, int(k)])]
