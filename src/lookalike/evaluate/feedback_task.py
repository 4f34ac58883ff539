"""EVALUATION.md task 6: a simulated shopper steering the results ("more like these, less like those").

Each query is searched through a real catalogue (:meth:`lookalike.catalog.Catalog.search_result`, so every
ranking stage counts); round 0 is the default top ``k``. In each round the shopper likes the shown products that
are relevant (task 3: the fine kind and the colour family) and dislikes the others; the judgements accumulate and
the next page is ``search(query, k, positive=liked, negative=disliked)``. Each page scores task 3's type+colour
P@k (liked products shown again count: the shopper sees them).

* Photos: task 3's photos (``colours.csv``) of the held-out contributors (or the training contributors', to
  choose weights), ``multi`` left out, against all 9,583 catalogue products.
* "More like this": each test-split product (with a colour family) against the other test products; relevant:
  the same ``articleType`` and colour family.

The catalogues are built from the evaluation embedding cache, with each picture's content hash (so identical
pictures collapse as in a real catalogue); the query photos are embedded and their colour read once
(:class:`Remembering`), not once per round.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import UpsertItem
from lookalike.colour.families import MULTI, family_of
from lookalike.evaluate.cache import EmbeddingCache
from lookalike.evaluate.colour_task import photo_colour_rows, photo_colour_task, split_photo_contributors
from lookalike.evaluate.datasets import catalog_rows, resolve_datasets_root
from lookalike.product import Product

__all__ = [
    "FeedbackScores",
    "Remembering",
    "build_catalogue",
    "catalogue_queries",
    "photo_queries",
    "run_feedback_eval",
    "simulate",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Query:
    """One query of the simulation: what to search (a photo's path or a product id) and what is relevant."""

    label: str
    path: Path | None = None
    product_id: str | None = None
    types: frozenset[str] = frozenset()
    family: str = ""


@dataclass
class FeedbackScores:
    """Type+colour mP@k per round, over all queries and over those whose round-0 page had no relevant product."""

    queries: int
    rounds: list[float]
    none_first: int
    none_first_rounds: list[float]
    all_first: int
    seconds: float = 0.0
    per_query: list[list[int]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "mP@k per round": [round(x, 4) for x in self.rounds],
            "no relevant product in round 0": self.none_first,
            "share with none in round 0": round(self.none_first / max(self.queries, 1), 4),
            "mP@k per round, those with none in round 0": [round(x, 4) for x in self.none_first_rounds],
            "all relevant in round 0": self.all_first,
            "seconds": round(self.seconds, 1),
        }


class Remembering:
    """An extractor or colour detector that remembers its answer per picture (by its pixels): the same photo is
    searched once per round. Everything else is the wrapped object's."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner = inner
        self._method = method
        self._known: dict[bytes, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name == self._method:
            return self._call
        return getattr(self._inner, name)

    def _call(self, arg: Any) -> Any:
        pictures = arg if isinstance(arg, list) else [arg]
        digest = hashlib.blake2b(digest_size=16)
        for img in pictures:
            digest.update(repr((img.size, img.mode)).encode())
            digest.update(img.tobytes())
        key = digest.digest()
        if key not in self._known:
            self._known[key] = getattr(self._inner, self._method)(arg)
        return self._known[key]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_catalogue(folder: Path, rows: Sequence[dict[str, str]], paths: Sequence[Path], vectors: np.ndarray) -> Any:
    """A catalogue of the catalogue ``rows`` (type, colour, gender, title) with their ``vectors`` and the SHA-256
    of each picture file (so identical pictures collapse); the extractor is the INT8 ``lookalike-fashion``."""
    from lookalike import Catalog

    cat = Catalog.create(folder, extractor="lookalike-fashion")
    items = []
    for r, p, v in zip(rows, paths, vectors, strict=True):
        product = Product(
            id=r["id"],
            title=r.get("productDisplayName") or None,
            category=r.get("masterCategory") or None,
            article_type=r.get("articleType") or None,
            colour=r.get("baseColour") or None,
            gender=r.get("gender") or None,
            image=str(p),
        )
        items.append(UpsertItem(product, v, image_sha=_sha(p)))
    for start in range(0, len(items), 1000):
        cat.backend.upsert(items[start : start + 1000])
    cat._extractor = Remembering(cat.extractor, "embed")
    cat._colour_detector = Remembering(cat.colour_detector, "detect")
    return cat


def photo_queries(root: str | os.PathLike[str] | None = None, which: str = "heldout") -> list[Query]:
    """Task 3's photos with one colour (not ``multi``): of the held-out contributors (``heldout``), of the
    training contributors (``training``: for choosing weights) or ``all``."""
    base = resolve_datasets_root(root)
    task = photo_colour_task(base, heldout_seed=None)
    rows = photo_colour_rows(base)
    trained = split_photo_contributors(base, 0)
    out = []
    for i, r in enumerate(rows):
        mine = r["sender_id"] in trained
        if task.query_families[i] == MULTI or (which == "heldout" and mine) or (which == "training" and not mine):
            continue
        out.append(Query(r["image"], path=task.queries.paths[i], types=task.query_types[i], family=r["colour_family"]))
    return out


def catalogue_queries(rows: Sequence[dict[str, str]], every: int = 1) -> list[Query]:
    """The test-split products with a colour family, as "more like this" queries (every ``every``-th)."""
    out = []
    for r in rows:
        fam = family_of(r["baseColour"])
        if int(r["id"]) % 5 == 0 and fam is not None and fam != MULTI:
            out.append(Query(r["id"], product_id=r["id"], types=frozenset({r["articleType"]}), family=fam))
    return out[::every]


def _relevant(q: Query, product: Product) -> bool:
    return product.article_type in q.types and family_of(product.colour or "") == q.family


def simulate(
    cat: Any,
    queries: Sequence[Query],
    rounds: int = 2,
    k: int = 10,
    first: dict[str, list[Any]] | None = None,
    progress: Progress | None = None,
) -> FeedbackScores:
    """Round 0 and ``rounds`` rounds of feedback for each query (``first``: round-0 pages already searched, by
    query label, reused and filled in)."""
    start = time.perf_counter()
    per_query = []
    for n, q in enumerate(queries):
        liked: list[str] = []
        disliked: list[str] = []
        counts = []
        for r in range(rounds + 1):
            args: dict[str, Any] = {"product_id": q.product_id} if q.product_id is not None else {}
            image = str(q.path) if q.path is not None else None
            if r == 0 and first is not None and q.label in first:
                hits = first[q.label]
            else:
                hits = cat.search_result(image, k=k, positive=liked, negative=disliked, **args).hits
                if r == 0 and first is not None:
                    first[q.label] = hits
            good = [h.id for h in hits if _relevant(q, h.product)]
            counts.append(len(good))
            liked += [i for i in good if i not in liked]
            disliked += [h.id for h in hits if h.id not in good and h.id not in disliked]
        per_query.append(counts)
        if progress is not None and (n + 1) % 50 == 0:
            progress(f"{n + 1} of {len(queries)} queries")
    table = np.array(per_query, dtype=np.float64).reshape(len(queries), rounds + 1) / k
    none = table[:, 0] == 0
    return FeedbackScores(
        queries=len(queries),
        rounds=table.mean(axis=0).tolist() if len(queries) else [0.0] * (rounds + 1),
        none_first=int(none.sum()),
        none_first_rounds=table[none].mean(axis=0).tolist() if none.any() else [0.0] * (rounds + 1),
        all_first=int((table[:, 0] == 1).sum()),
        seconds=time.perf_counter() - start,
        per_query=[list(c) for c in per_query],
    )


def _gallery(root: Path, cache_root: str | os.PathLike[str] | None, test_only: bool) -> tuple[list, list, np.ndarray]:
    """The catalogue's rows, picture paths and vectors (from the evaluation cache: ``cache_root``, default
    ``$LOOKALIKE_HOME/eval-cache``); ``test_only``: the test split."""
    from lookalike.config import lookalike_home
    from lookalike.extractors import create_extractor

    cache_root = cache_root if cache_root is not None else lookalike_home() / "eval-cache"

    images, rows = catalog_rows(root)
    keep = [i for i, r in enumerate(rows) if not test_only or int(r["id"]) % 5 == 0]
    sub = images.subset(keep)
    vecs, _ = EmbeddingCache(cache_root).embed(create_extractor("lookalike-fashion"), sub)
    return [rows[i] for i in keep], list(sub.paths), vecs


def run_feedback_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    k: int = 10,
    rounds: int = 2,
    which: str = "heldout",
    products: bool = True,
    every: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Task 6: the photos of ``which`` contributors and (``products``) the catalogue's "more like this", every
    ``every``-th product; ``{"photos": scores, "products": scores}`` as dicts."""
    base = resolve_datasets_root(root)
    say = progress or (lambda _msg: None)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-feedback-eval-") as tmp:
        say("catalogue of all products")
        rows, paths, vecs = _gallery(base, cache_root, test_only=False)
        with build_catalogue(Path(tmp) / "all", rows, paths, vecs) as cat:
            out["photos"] = simulate(cat, photo_queries(base, which), rounds, k, progress=say).to_dict()
        if products:
            say("catalogue of the test split")
            rows, paths, vecs = _gallery(base, cache_root, test_only=True)
            with build_catalogue(Path(tmp) / "test", rows, paths, vecs) as cat:
                queries = catalogue_queries(rows, every)
                out["products"] = simulate(cat, queries, rounds, k, progress=say).to_dict()
    out["settings"] = {"k": k, "rounds": rounds, "photos": which, "products every": every}
    return out
