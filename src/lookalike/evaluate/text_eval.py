"""EVALUATION.md task 4 through the catalogue's own search: words → a catalogue built from cached vectors.

Two catalogues of the test split (1,912 products) are built in a temporary folder from the evaluation
embedding cache (no picture is decoded twice): **with text** (title, article type, colour, gender, category,
subcategory, usage: what a shop ingests) and **pictures only** (only the id and the vector, plus the colour
family the ingest predicts from the picture, as ``lookalike ingest`` stores it). Each query is then a real
:meth:`lookalike.catalog.Catalog.search_texts` call, so the numbers are those of the shipped ranking (vector
of the text tower fused with FTS5 BM25, the words' colour as the colour preference, the facet bonus). The
BM25-only baseline is the same catalogue with the text tower switched off.

Scoring: :mod:`lookalike.evaluate.text_task` (phrases → mP@10 type + colour family + gender; titles → own
product R@1, R@10).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.base import UpsertItem
from lookalike.evaluate.text_task import phrase_queries, phrase_relevance, test_split, test_split_image_vectors
from lookalike.product import PREDICTED_COLOUR, Product

__all__ = [
    "build_catalogue",
    "colour_cache_name",
    "predicted_families",
    "products_of",
    "run_text_eval",
    "score_catalogue",
]

Progress = Callable[[str], None]


def products_of(rows: Sequence[dict[str, str]], with_text: bool, families: Sequence[str | None]) -> list[Product]:
    """The test split as products: with their text, or pictures only (id and predicted colour family)."""
    out = []
    for r, fam in zip(rows, families, strict=True):
        if not with_text:
            out.append(Product(id=r["id"], extra={PREDICTED_COLOUR: fam} if fam else {}))
            continue
        extra = {k: r[k] for k in ("usage", "season") if r.get(k)}
        out.append(
            Product(
                id=r["id"],
                title=r.get("productDisplayName") or None,
                category=r.get("masterCategory") or None,
                subcategory=r.get("subCategory") or None,
                article_type=r.get("articleType") or None,
                colour=r.get("baseColour") or None,
                gender=r.get("gender") or None,
                extra=extra,
            )
        )
    return out


def colour_cache_name() -> str:
    """The file name that remembers :func:`predicted_families` of the shipped colour detector: named after the
    SHA-256 of its colour head and garment segmenter, so a retrained detector never reads another's colours."""
    from lookalike.colour.model import DEFAULT_COLOUR_MODEL
    from lookalike.extractors.identity import file_sha256
    from lookalike.garment import DEFAULT_MODEL

    digest = hashlib.sha256((file_sha256(DEFAULT_COLOUR_MODEL) + file_sha256(DEFAULT_MODEL)).encode()).hexdigest()
    return f"predicted-colours-{digest[:12]}.json"


def predicted_families(paths: Sequence[Path], cache_file: Path | None = None) -> list[str | None]:
    """The colour family the ingest predicts from each picture (:func:`lookalike.catalog.prepare.picture_colour`),
    remembered in ``cache_file`` (JSON, by path; :func:`colour_cache_name` names it after the detector)."""
    from lookalike.catalog.prepare import picture_colour
    from lookalike.imaging.decode import load_image

    known: dict[str, str] = {}
    if cache_file is not None and cache_file.is_file():
        known = json.loads(cache_file.read_text())
    missing = [p for p in paths if str(p) not in known]
    for p in missing:
        known[str(p)] = picture_colour(load_image(p))
    if missing and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(known))
    return [known.get(str(p)) for p in paths]


def build_catalogue(folder: Path, products: Sequence[Product], vectors: np.ndarray) -> Any:
    """A catalogue of ``products`` with their ``vectors`` (lookalike-fashion space) in ``folder``; the
    extractor is never loaded (every vector is given)."""
    from lookalike import Catalog

    cat = Catalog.create(folder, extractor="lookalike-fashion")
    items = [UpsertItem(p, v) for p, v in zip(products, vectors, strict=True)]
    for start in range(0, len(items), 1000):
        cat.backend.upsert(items[start : start + 1000])
    return cat


def score_catalogue(
    cat: Any,
    rows: Sequence[dict[str, str]],
    seed: int = 0,
    k: int = 10,
    text_tower: bool = True,
    every: int = 1,
    transform: Callable[[str], str] | None = None,
) -> dict[str, float]:
    """Task 4 on one catalogue through :meth:`~lookalike.catalog.Catalog.search_texts`; ``text_tower``
    False: BM25 alone (the baseline); ``every``: only every n-th query (for quick sweeps); ``transform``: what
    each query text is passed through first (relevance stays the typed phrase's)."""
    change = transform or (lambda t: t)
    if not text_tower:
        cat._text_encoder = False  # the catalogue's switch for "no text vectors"
    index = {r["id"]: i for i, r in enumerate(rows)}
    out: dict[str, float] = {}
    for label, distinct in (("", False), (" distinct", True)):
        queries = phrase_queries(rows, seed, distinct)[::every]
        rel = phrase_relevance(queries, rows)
        results = cat.search_texts([change(q.text) for q in queries], k=k)
        p = [sum(bool(rel[qi, index[h.id]]) for h in res.hits) / k for qi, res in enumerate(results)]
        out[f"phrase{label} mP@{k}"] = float(np.mean(p))
    titles = [(i, " ".join((r.get("productDisplayName") or "").split())) for i, r in enumerate(rows)]
    titles = [(i, t) for i, t in titles if t][::every]
    results = cat.search_texts([change(t) for _, t in titles], k=k)
    ranks = [
        next((j for j, h in enumerate(res.hits) if h.id == rows[i]["id"]), k)
        for (i, _), res in zip(titles, results, strict=True)
    ]
    out["title R@1"] = float(np.mean([r < 1 for r in ranks]))
    out[f"title R@{k}"] = float(np.mean([r < k for r in ranks]))
    return out


def run_text_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    k: int = 10,
    settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
    every: int = 1,
    baselines: bool = True,
) -> dict[str, dict[str, float]]:
    """Task 4 on both catalogues, with the shipped search and with BM25 alone: ``{catalogue: {metric: value}}``.
    ``settings``: catalogue attributes to set first (``text_fusion``, ``text_weight``...: for measuring)."""
    rows, images = test_split(root)
    say = progress or (lambda _msg: None)
    say("image vectors")
    vecs = test_split_image_vectors(images, cache_root)
    cache = Path(cache_root) if cache_root is not None else None
    say("predicted colours")
    fams = predicted_families(list(images.paths), None if cache is None else cache / colour_cache_name())
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-text-eval-") as tmp:
        for name, with_text in (("with text", True), ("pictures only", False)):
            say(f"catalogue {name}")
            with build_catalogue(Path(tmp) / name.replace(" ", "-"), products_of(rows, with_text, fams), vecs) as cat:
                for key, value in (settings or {}).items():
                    setattr(cat, key, value)
                out[name] = score_catalogue(cat, rows, seed, k, every=every)
                if baselines:
                    out[f"BM25 only, {name}"] = score_catalogue(cat, rows, seed, k, False, every)
    return out


def photo_words_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    weights: Sequence[float] | None = None,
    k: int = 10,
    heldout_seed: int | None = 0,
) -> dict[str, float]:
    """Photo plus a colour word (task 3 photos, each asked for a colour family other than its own, "in
    <family>"): the share of the top ``k`` of the photo's kind **and** in the asked colour, for the photo
    alone, with the colour preference (``colour=``), and with the words at each image-text ``weights``
    (default: the shipped one). Gallery: all catalogue products with their text, vectors from the evaluation
    cache."""
    from lookalike.catalog.text_query import IMAGE_TEXT_WEIGHT
    from lookalike.colour.families import FAMILIES, MULTI, family_of
    from lookalike.evaluate.cache import EmbeddingCache
    from lookalike.evaluate.colour_task import photo_colour_task
    from lookalike.evaluate.datasets import catalog_rows, resolve_datasets_root
    from lookalike.extractors import create_extractor

    weights = (IMAGE_TEXT_WEIGHT,) if weights is None else weights
    task = photo_colour_task(root, heldout_seed=heldout_seed)
    vecs, _ = EmbeddingCache(cache_root).embed(create_extractor("lookalike-fashion"), task.gallery)
    _, grows = catalog_rows(resolve_datasets_root(root))
    asked = []
    options = [f for f in FAMILIES if f != MULTI]
    for i, fam in enumerate(task.query_families):
        choices = [f for f in options if f != fam]
        asked.append(choices[(i * 7) % len(choices)])
    out: dict[str, float] = {}
    products = products_of(grows, True, [None] * len(grows))
    with (
        tempfile.TemporaryDirectory(prefix="lookalike-photo-words-") as tmp,
        build_catalogue(Path(tmp) / "cat", products, vecs) as cat,
    ):

        def share(run: Callable[[Path, str], Any]) -> float:
            got = []
            for path, types, want in zip(task.queries.paths, task.query_types, asked, strict=True):
                hits = run(path, want)
                got.append(
                    sum(h.product.article_type in types and family_of(h.product.colour) == want for h in hits) / k
                )
            return float(np.mean(got))

        out["photo alone"] = share(lambda p, c: cat.search(p, k=k))
        out["photo + colour preference"] = share(lambda p, c: cat.search(p, k=k, colour=c))
        for w in weights:
            cat.image_text_weight = w
            out[f"photo + 'in <colour>' a={w}"] = share(lambda p, c: cat.search(p, k=k, text=f"in {c}"))
    out["queries"] = float(len(task.query_families))
    return out
