"""The words of a product store's text, counted: what a query's words are spelt against
(:mod:`lookalike.catalog.spelling`).

A word is a run of letters (digits and ``_`` split words; casefolded), counted once per column of the word
index it appears in (:data:`lookalike.store.text_index.TEXT_COLUMNS`: title, brand, article type, colour with
its family, gender, category, subcategory and the string values of ``extra``, the predicted colour left out).
:func:`read_store_words` reads them from the word index for the products written after a sequence number, in
one snapshot of ``products.db`` on a connection of its own, so a caller keeps counts up to date by reading only
what changed (about 0.4 s for all 44k products of fashion-product-images-small, 10 ms when nothing changed).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from lookalike.store.text_index import TEXT_COLUMNS

__all__ = ["LETTERS", "count_words", "read_store_words"]

#: A word: a run of letters (no digits, no ``_``).
LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)


def count_words(texts: Iterable[str | None], counts: Counter[str] | None = None) -> Counter[str]:
    """The casefolded words of ``texts`` counted (added to ``counts`` when given); the same text many
    times is split once."""
    out = Counter() if counts is None else counts
    for text, n in Counter(t for t in texts if t).items():
        for word in LETTERS.findall(text.casefold()):
            out[word] += n
    return out


def read_store_words(path: str | Path, since: int = 0) -> tuple[int, Counter[str]]:
    """(the store's ``seq``, the words of the products written after ``since``) of the product store at
    ``path``, read in one snapshot. A deleted product's words are not taken back: callers that add the
    counts up keep a superset of the catalogue's words."""
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        conn.execute("BEGIN")
        row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        seq = int(row[0]) if row else 0
        columns = ", ".join(TEXT_COLUMNS)
        changed = "" if since <= 0 else " WHERE rowid IN (SELECT rowid FROM products WHERE seq > ?)"
        rows = conn.execute(f"SELECT {columns} FROM products_fts{changed}", (int(since),) if changed else ()).fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return seq, count_words(v for r in rows for v in r)
