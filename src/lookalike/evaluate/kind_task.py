"""EVALUATION.md task 5, "the right kind": is there any product of the photo's kind on its first page?

Each photo is searched through a real catalogue of all 9,583 products (:meth:`lookalike.catalog.Catalog.search_result`,
so every ranking stage counts), twice: as the catalogue ranks by default (the kind head's prior, the kind stage) and
with the kind stage off (``kind_rank = False``: the nearest products' vote, as before the stage). Three sets:

* ``photo-heldout``: task 2's photos of the contributors held out from training; a photo's kinds are its label's
  (``label_to_articletype.json``);
* ``photo-colour``: task 3's photos (``colours.csv``) of the held-out contributors, the fine kind where labelled
  (jeans, heels...), else the label's; also scored for type+colour (task 3's headline);
* ``photo-colour-all``: all 310 photos of ``colours.csv`` (half from training contributors: for comparison).

Per set: mP@10 of the kind, mP@1, macro P@10 (per label first), the share of photos with **no** product of the
right kind in the top 10, and per label the count of such pages with the kinds that filled them (the confusion
list); also how often the kind the page shows first as "looks like" is right.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.colour.families import MULTI, family_of
from lookalike.evaluate.colour_task import photo_colour_rows, photo_colour_task
from lookalike.evaluate.datasets import photo_task, resolve_datasets_root
from lookalike.evaluate.feedback_task import _gallery, build_catalogue

__all__ = ["KIND_SETS", "KindQuery", "kind_queries", "run_kind_eval", "score_pages"]

KIND_SETS = ("photo-heldout", "photo-colour", "photo-colour-all")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class KindQuery:
    """A photo, the label it is grouped by, the article types that count as its kind, and its colour family
    (None: not scored for colour)."""

    path: Path
    label: str
    kinds: frozenset[str]
    family: str | None = None


def kind_queries(root: str | os.PathLike[str] | None, name: str) -> list[KindQuery]:
    """The queries of set ``name`` (one of :data:`KIND_SETS`)."""
    base = resolve_datasets_root(root)
    if name == "photo-heldout":
        task = photo_task(base, heldout_seed=0)
        accepts = task.criteria[0].query_accepts
        return [KindQuery(p, lab, a) for p, lab, a in zip(task.queries.paths, task.query_groups, accepts, strict=True)]
    if name not in ("photo-colour", "photo-colour-all"):
        raise ValueError(f"unknown kind set {name!r}; one of {', '.join(KIND_SETS)}")
    ct = photo_colour_task(base, heldout_seed=0 if name == "photo-colour" else None)
    fine = {r["path"]: r["fine_type"] for r in photo_colour_rows(base)}
    out = []
    for i, path in enumerate(ct.queries.paths):
        label = ct.query_labels[i] + (f": {fine[path]}" if fine.get(path) else "")  # "Pants: jeans"
        fam = ct.query_families[i]
        out.append(KindQuery(path, label, ct.query_types[i], None if fam == MULTI else fam))
    return out


def score_pages(
    queries: Sequence[KindQuery], pages: Sequence[Sequence[Any]], seen: Sequence[str | None]
) -> dict[str, Any]:
    """The set's scores from each query's page (products with ``article_type`` and ``colour``) and the kind its
    result showed first as "looks like" (``seen``; None when it showed none)."""
    k = 10
    rel = [[p.article_type in q.kinds for p in page[:k]] for q, page in zip(queries, pages, strict=True)]
    p10 = np.array([sum(r) / k for r in rel]) if rel else np.zeros(0)
    p1 = np.array([float(bool(r) and r[0]) for r in rel]) if rel else np.zeros(0)
    none = np.array([not any(r) for r in rel], dtype=bool)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        by_label[q.label].append(i)
    labels: dict[str, Any] = {}
    for label, idx in sorted(by_label.items()):
        went = Counter(str(p.article_type) for i in idx if none[i] for p in pages[i][:k])
        labels[label] = {
            "queries": len(idx),
            "P@10": round(float(p10[idx].mean()), 4),
            "none": int(none[idx].sum()),
            "misses went to": dict(went.most_common(3)),
        }
    colour = [
        sum(p.article_type in q.kinds and family_of(p.colour or "") == q.family for p in page[:k]) / k
        for q, page in zip(queries, pages, strict=True)
        if q.family is not None
    ]
    shown = [s for s in seen if s is not None]
    return {
        "queries": len(queries),
        "mP@10": round(float(p10.mean()), 4) if len(p10) else 0.0,
        "mP@1": round(float(p1.mean()), 4) if len(p1) else 0.0,
        "macroP@10": round(float(np.mean([p10[i].mean() for i in by_label.values()])), 4) if by_label else 0.0,
        "none": int(none.sum()),
        "none share": round(float(none.mean()), 4) if len(none) else 0.0,
        "type+colour mP@10": round(float(np.mean(colour)), 4) if colour else None,
        "looks-like right": round(sum(s in q.kinds for s, q in zip(seen, queries, strict=True)) / len(shown), 4)
        if shown
        else None,
        "per label": labels,
    }


def run_kind_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    sets: Sequence[str] = KIND_SETS,
    max_queries: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Task 5 on each of ``sets``: ``{set: {"default": scores, "vote": scores}}`` (``vote``: the kind stage off,
    as before it), plus ``settings``. ``max_queries``: the first N of each set (tiny runs)."""
    base = resolve_datasets_root(root)
    say = progress or (lambda _msg: None)
    out: dict[str, Any] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lookalike-kind-eval-") as tmp:
        say("catalogue of all products")
        rows, paths, vecs = _gallery(base, cache_root, test_only=False)
        with build_catalogue(Path(tmp) / "all", rows, paths, vecs) as cat:
            for name in sets:
                queries = kind_queries(base, name)[:max_queries]
                out[name] = {}
                for mode, on in (("default", True), ("vote", False)):
                    cat.kind_rank = on
                    pages, seen = [], []
                    for n, q in enumerate(queries):
                        result = cat.search_result(str(q.path), k=10)
                        pages.append([h.product for h in result.hits])
                        seen.append(result.kind.seen[0][0] if result.kind is not None and result.kind.seen else None)
                        if (n + 1) % 200 == 0:
                            say(f"{name} ({mode}): {n + 1} of {len(queries)}")
                    out[name][mode] = score_pages(queries, pages, seen)
    out["settings"] = {"k": 10, "sets": list(sets), "seconds": round(time.perf_counter() - start, 1)}
    return out
