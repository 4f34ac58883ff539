"""Words -> catalogue (EVALUATION.md task 4), on the pictures only: text vectors against image vectors.

* Attribute phrases: one seeded phrase per test-split product (ids divisible by 5) from its articleType,
  colour family, gender and usage, in varied wording ("men's navy blue shirt", "white sneakers for women");
  also reported: one phrase per distinct (type, family, gender). Relevant: the product's type and colour
  family are the phrase's and its gender fits (a Men or Women phrase also accepts Unisex; a Unisex product's
  phrase names no gender, and any gender fits it). mP@10, and the best achievable on this gallery.
* Titles: each test product's ``productDisplayName`` -> its own product: R@1, R@10.

The gallery is the test split's pictures (1,912 products, no text). Scoring functions are pure; ranking is
exact (cosine of L2-normalised vectors, ties broken by gallery order).
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.colour.families import family_of
from lookalike.evaluate.datasets import CATALOG_DATASET, ImageSet, resolve_datasets_root
from lookalike.evaluate.metrics import precision_at_k_batch
from lookalike.training.phrases import attribute_phrase

__all__ = [
    "PhraseQuery",
    "gender_fits",
    "phrase_precision",
    "phrase_queries",
    "phrase_relevance",
    "run_text_task",
    "test_split",
    "test_split_image_vectors",
    "title_recall",
    "top_k",
]

Encode = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class PhraseQuery:
    """A phrase and what it asks for; ``gender`` ``None`` means any."""

    text: str
    article_type: str
    family: str
    gender: str | None


def gender_fits(wanted: str | None, product: str) -> bool:
    """Whether a product of gender ``product`` fits a phrase asking for ``wanted``."""
    if wanted is None:
        return True
    return product == wanted or (wanted in ("Men", "Women") and product == "Unisex")


def phrase_queries(rows: Sequence[dict[str, str]], seed: int = 0, distinct: bool = False) -> list[PhraseQuery]:
    """One phrase per product of ``rows`` with a colour family (so common garments weigh as they do in the
    catalogue), wording drawn from ``random.Random(seed)`` with the product's usage; ``distinct``: one per
    distinct (type, family, gender) instead, in sorted order (rare combinations weigh as much as common)."""
    combos: list[tuple[tuple[str, str, str | None], str]] = []
    for r in rows:
        family = family_of(r.get("baseColour") or "")
        if family is None:
            continue
        gender = r.get("gender") or None
        combos.append(((r["articleType"], family, None if gender == "Unisex" else gender), r.get("usage") or ""))
    if distinct:
        first = dict(reversed(combos))
        combos = sorted(first.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or ""))
    rng = random.Random(seed)
    return [PhraseQuery(attribute_phrase(t, f, g, rng, usage=u), t, f, g) for (t, f, g), u in combos]


def phrase_relevance(queries: Sequence[PhraseQuery], rows: Sequence[dict[str, str]]) -> np.ndarray:
    """(queries, products) bool: the product's type, colour family and gender fit the phrase."""
    families = [family_of(r.get("baseColour") or "") for r in rows]
    out = np.zeros((len(queries), len(rows)), dtype=bool)
    for i, q in enumerate(queries):
        for j, r in enumerate(rows):
            out[i, j] = (
                r["articleType"] == q.article_type and families[j] == q.family and gender_fits(q.gender, r["gender"])
            )
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(q, min(k, g)) gallery indices by descending score, ties by gallery order."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def phrase_precision(scores: np.ndarray, relevance: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query precision@k of ranking the gallery by ``scores`` (q, g) under ``relevance`` (q, g)."""
    top = top_k(scores, k)
    return precision_at_k_batch(np.take_along_axis(relevance, top, axis=1), k)


def title_recall(scores: np.ndarray, own: Sequence[int], k: int) -> np.ndarray:
    """Per query 1.0 when gallery item ``own[i]`` is among the first ``k`` by ``scores``, else 0.0."""
    top = top_k(scores, k)
    return (top == np.asarray(own)[:, None]).any(axis=1).astype(np.float64)


# --- running it -------------------------------------------------------------------------------------
def test_split(root: str | os.PathLike[str] | None = None) -> tuple[list[dict[str, str]], ImageSet]:
    """The test split's label rows and pictures (ids divisible by 5) of ``fashion-product-images-224``."""
    folder = resolve_datasets_root(root) / CATALOG_DATASET
    with (folder / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["id"]) % 5 == 0]
    images = ImageSet(CATALOG_DATASET, tuple(folder / r["image"] for r in rows), tuple(r["id"] for r in rows))
    return rows, images


def test_split_image_vectors(
    images: ImageSet, cache_root: str | os.PathLike[str] | None = None, model: str = "lookalike-fashion"
) -> np.ndarray:
    """Image vectors of ``images`` by ``model``, through the evaluation embedding cache."""
    from lookalike.evaluate.cache import EmbeddingCache
    from lookalike.extractors import create_extractor

    vecs, _ = EmbeddingCache(cache_root).embed(create_extractor(model), images)
    return vecs


def run_text_task(
    encode: Encode, rows: Sequence[dict[str, str]], image_vecs: np.ndarray, seed: int = 0, k: int = 10
) -> dict[str, float]:
    """Both halves of the task for one text encoder against the gallery ``image_vecs`` (rows' pictures)."""
    out: dict[str, float] = {}
    for label, distinct in (("", False), (" distinct", True)):
        queries = phrase_queries(rows, seed, distinct)
        rel = phrase_relevance(queries, rows)
        p = phrase_precision(encode([q.text for q in queries]) @ image_vecs.T, rel, k)
        out[f"phrases{label}"] = float(len(queries))
        out[f"phrase{label} mP@{k}"] = float(p.mean())
        out[f"phrase{label} best mP@{k}"] = float((np.minimum(rel.sum(1), k) / k).mean())
    titles = [" ".join((r.get("productDisplayName") or "").split()) for r in rows]
    keep = [i for i, t in enumerate(titles) if t]
    title_scores = encode([titles[i] for i in keep]) @ image_vecs.T
    return {
        **out,
        "titles": float(len(keep)),
        "title R@1": float(title_recall(title_scores, keep, 1).mean()),
        f"title R@{k}": float(title_recall(title_scores, keep, k).mean()),
    }


def main() -> None:  # pragma: no cover - a measurement, run by hand
    """Print the task's numbers for the shipped text tower (``python -m lookalike.evaluate.text_task``)."""
    from lookalike.text import default_text_encoder

    rows, images = test_split(os.environ.get("LOOKALIKE_DATASETS"))
    vecs = test_split_image_vectors(images, os.environ.get("LOOKALIKE_EVAL_CACHE", Path.home() / ".cache/lookalike"))
    encoder = default_text_encoder()
    for name, value in run_text_task(lambda t: encoder.encode(t), rows, vecs).items():
        print(f"{name}: {value:.4f}" if value < 1.5 else f"{name}: {int(value)}")


if __name__ == "__main__":  # pragma: no cover
    main()
