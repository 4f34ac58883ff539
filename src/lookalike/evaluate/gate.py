"""The reindex gate: score two generations of a catalogue on labelled query pictures; switch only if not worse.

A gate file is a small CSV, one labelled query picture per row::

    image,products,article_types
    queries/navy-shirt.jpg,15634|13466,
    queries/boots.jpg,,Casual Shoes|Sports Shoes

``image``: a picture (path relative to the CSV, or absolute). ``products``: the product ids that count as a right
answer, ``|``-separated; ``article_types``: the article types that count as right (case-insensitive). A hit is
right when it is one of the products or has one of the article types; a row needs at least one of the two.

The score is mP@k: the mean over the queries of precision@k (:func:`lookalike.evaluate.metrics.precision_at_k`,
a list shorter than k counting its missing ranks as wrong), each query searched as ``lookalike search`` would
(mirror view, colour re-ranking). :func:`gate` passes the new generation when its score is at most ``max_loss``
below the serving one's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.errors import LookalikeError, SourceError
from lookalike.evaluate.metrics import mean_over_queries, precision_at_k

__all__ = ["DEFAULT_MAX_LOSS", "GateQuery", "GateResult", "gate", "make_gate", "read_gate", "score"]

DEFAULT_MAX_LOSS = 0.01


@dataclass(frozen=True)
class GateQuery:
    """One labelled query picture and what counts as a right answer to it."""

    image: Path
    products: frozenset[str]
    article_types: frozenset[str]  # case-folded

    def right(self, product: Any) -> bool:
        kind = (getattr(product, "article_type", None) or "").casefold()
        return product.id in self.products or (bool(kind) and kind in self.article_types)


@dataclass(frozen=True)
class GateResult:
    """Both scores, the loss allowed, and the verdict."""

    old: float
    new: float
    max_loss: float
    k: int
    queries: int

    @property
    def passed(self) -> bool:
        return self.new >= self.old - self.max_loss - 1e-12

    def summary(self) -> str:
        verdict = "not worse" if self.passed else "worse"
        return (
            f"mP@{self.k} {self.new:.3f} (new) against {self.old:.3f} (serving) on {self.queries} queries: "
            f"{verdict} (loss {self.old - self.new:+.3f}, at most {self.max_loss:.3f} allowed)"
        )


def _split(cell: str | None) -> list[str]:
    return [v.strip() for v in (cell or "").split("|") if v.strip()]


def read_gate(path: str | Path) -> list[GateQuery]:
    """The labelled queries of a gate CSV (see the module docstring); :class:`SourceError` for a file that is not
    one."""
    csv_path = Path(path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read the gate file {csv_path}: {exc}") from exc
    queries = []
    for line, row in enumerate(rows, start=2):
        image = (row.get("image") or row.get("path") or "").strip()
        products, kinds = _split(row.get("products")), _split(row.get("article_types"))
        if not image or not (products or kinds):
            raise SourceError(f"{csv_path}, line {line}: a gate row needs an image and products or article_types")
        picture = Path(image) if Path(image).is_absolute() else csv_path.resolve().parent / image
        queries.append(GateQuery(picture, frozenset(products), frozenset(k.casefold() for k in kinds)))
    if not queries:
        raise SourceError(f"{csv_path} holds no queries (columns: image, products, article_types)")
    return queries


def score(catalog: Any, queries: list[GateQuery], k: int = 10) -> float:
    """mP@``k`` of ``catalog`` (a :class:`~lookalike.catalog.Catalog`) on ``queries``; a query picture that cannot
    be read fails the gate (:class:`LookalikeError`), rather than scoring 0 for both models."""
    results = catalog.search_many([str(q.image) for q in queries], k=k)
    values = []
    for q, hits in zip(queries, results, strict=True):
        if isinstance(hits, LookalikeError):
            raise SourceError(f"gate query {q.image}: {hits}")
        values.append(precision_at_k([q.right(h.product) for h in hits], k))
    return mean_over_queries(values)


def gate(old: Any, new: Any, queries: list[GateQuery], max_loss: float = DEFAULT_MAX_LOSS, k: int = 10) -> GateResult:
    """Score the serving catalogue ``old`` and the candidate ``new`` on the same queries."""
    return GateResult(score(old, queries, k), score(new, queries, k), max_loss, k, len(queries))


def make_gate(path: str | Path, max_loss: float = DEFAULT_MAX_LOSS, k: int = 10) -> Any:
    """A gate for :func:`lookalike.catalog.reindex.reindex`: ``(old, new) -> (passed, summary)`` (the file is read
    now, so a bad one fails before any re-embedding)."""
    queries = read_gate(path)

    def run(old: Any, new: Any) -> tuple[bool, str]:
        result = gate(old, new, queries, max_loss, k)
        return result.passed, result.summary()

    return run
