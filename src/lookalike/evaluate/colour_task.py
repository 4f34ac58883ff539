"""EVALUATION.md task 3 ("looks alike": same kind *and* same colour), and its catalogue variant.

* :func:`photo_colour_task`: the 310 labelled photos of ``clothing-photos-dev/colours.csv`` (or only those of
  contributors held out from training) → all 9,583 products of the 224-px catalogue. A photo's kind is its
  fine type where it has one (``fine_type_to_articletype.json``), else its label; a product's colour family
  comes from its ``baseColour``.
* :func:`catalogue_colour_task`: the catalogue's test split, each product against the other test products.

:func:`evaluate_colour_task` ranks as a catalogue search does: exact cosine (with the picture's mirror view
for photos), then the colour ranking stage of :mod:`lookalike.colour.ranking` over the top ``candidates``,
with the query's colour from ``query_colour`` (photos: the colour detector; catalogue: the product's own
colour field, as a "more like this" search uses it); scores come from the pure
:mod:`lookalike.evaluate.colour_metrics`.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.colour.families import FAMILIES, family_index, family_of
from lookalike.colour.ranking import (
    DEFAULT_COLOUR_WEIGHT,
    DEFAULT_KIND_WEIGHT,
    KIND_VOTERS,
    PHOTO_KIND_WEIGHT,
    PRODUCT_COLOUR_WEIGHT,
    colour_kind_order,
)
from lookalike.errors import SourceError
from lookalike.evaluate.cache import EmbeddingCache
from lookalike.evaluate.colour_metrics import ColourScores, colour_scores
from lookalike.evaluate.datasets import (
    CATALOG_DATASET,
    PHOTO_DATASET,
    ImageSet,
    _read_csv,
    catalog_rows,
    resolve_datasets_root,
    split_contributors,
    task2_photo_rows,
)
from lookalike.evaluate.ranking import rank_exact
from lookalike.extractors import Extractor
from lookalike.kind import KindModel, KindPrior, catalogue_distribution, default_kind_model, kind_order

__all__ = [
    "COLOUR_TASKS",
    "ColourTask",
    "ColourTaskResult",
    "catalogue_colour_task",
    "evaluate_colour_task",
    "photo_colour_rows",
    "photo_colour_task",
    "run_colour_evaluation",
    "split_photo_contributors",
]

ColourFn = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class ColourTask:
    """Queries and gallery with the labels task 3 scores on. ``exclude[i]``: gallery index never returned
    for query i (the query itself), or -1; ``query_colours``: (n, 12) known colour distributions (catalogue
    queries), or None when the query's colour must be detected from its picture."""

    name: str
    description: str
    queries: ImageSet
    gallery: ImageSet
    query_types: tuple[frozenset[str], ...]
    query_families: tuple[str, ...]
    query_labels: tuple[str, ...]
    gallery_types: tuple[str, ...]
    gallery_families: tuple[str | None, ...]
    exclude: tuple[int, ...]
    query_colours: np.ndarray | None = None
    mirror: bool = True
    #: Exact colour names (the catalogue's ``baseColour``) of queries and gallery, for the stricter score of
    #: EVALUATION.md task 1 (same type and the very same colour name); None where the task has none.
    exact_query: tuple[str, ...] | None = None
    exact_gallery: tuple[str | None, ...] | None = None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc


def split_photo_contributors(root: str | os.PathLike[str] | None, seed: int = 0) -> set[str]:
    """The contributors ``lookalike train`` may train on (task 2's split of ``labels.csv``, ``seed``)."""
    folder = resolve_datasets_root(root) / PHOTO_DATASET
    mapping = _json(folder / "label_to_articletype.json")
    kept = task2_photo_rows(_read_csv(folder / "labels.csv"), mapping)
    return split_contributors([r["sender_id"] for r in kept], seed=seed)


def photo_colour_rows(root: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """The rows of ``colours.csv``, each with its picture's ``path``."""
    folder = resolve_datasets_root(root) / PHOTO_DATASET
    rows = _read_csv(folder / "colours.csv")
    for r in rows:
        if r["colour_family"] not in FAMILIES:
            raise SourceError(f"{folder / 'colours.csv'}: unknown colour family {r['colour_family']!r}")
        r["path"] = folder / r["image_path"]
    return rows


def photo_colour_task(root: str | os.PathLike[str] | None = None, heldout_seed: int | None = 0) -> ColourTask:
    """Task 3 on the contributors :func:`split_photo_contributors` holds out (``heldout_seed``), or on all
    310 photos (``heldout_seed=None``)."""
    base = resolve_datasets_root(root)
    folder = base / PHOTO_DATASET
    labels = _json(folder / "label_to_articletype.json")
    fine = _json(folder / "fine_type_to_articletype.json")
    rows = photo_colour_rows(base)
    name = "photo-colour-all"
    if heldout_seed is not None:
        trained = split_photo_contributors(base, heldout_seed)
        rows = [r for r in rows if r["sender_id"] not in trained]
        name = "photo-colour"
    gallery, grows = catalog_rows(base)
    queries = ImageSet(PHOTO_DATASET, tuple(r["path"] for r in rows), tuple(r["image"] for r in rows))
    return ColourTask(
        name=name,
        description=f"shopper's photo ({PHOTO_DATASET}/colours.csv"
        + (f", contributors held out from training, seed {heldout_seed}" if heldout_seed is not None else ", all")
        + f") -> all {len(gallery):,} catalogue products; same fine kind and colour family",
        queries=queries,
        gallery=gallery,
        query_types=tuple(frozenset(fine[r["fine_type"]] if r["fine_type"] else labels[r["label"]]) for r in rows),
        query_families=tuple(r["colour_family"] for r in rows),
        query_labels=tuple(r["label"] for r in rows),
        gallery_types=tuple(r["articleType"] for r in grows),
        gallery_families=tuple(family_of(r["baseColour"]) for r in grows),
        exclude=(-1,) * len(rows),
    )


def catalogue_colour_task(root: str | os.PathLike[str] | None = None, remainder: int = 0) -> ColourTask:
    """The catalogue's test split (ids divisible by 5), each product ranked against the others; relevant: same
    ``articleType`` and colour family. Products without a family count for the type score only.
    ``remainder``: the products whose id leaves it modulo 5 instead (1-4: training products, for tuning)."""
    base = resolve_datasets_root(root)
    images, rows = catalog_rows(base)
    keep = [i for i, r in enumerate(rows) if int(r["id"]) % 5 == remainder]
    sub = images.subset(keep)
    rows = [rows[i] for i in keep]
    fams = tuple(family_of(r["baseColour"]) for r in rows)
    known = np.zeros((len(rows), len(FAMILIES)), dtype=np.float32)
    for i, r in enumerate(rows):
        j = family_index(r["baseColour"])
        if j >= 0:
            known[i, j] = 1.0
    return ColourTask(
        name="catalog-colour",
        description=f"{CATALOG_DATASET} test split ({len(rows):,} products) -> the other test products; "
        "same type and colour family",
        queries=sub,
        gallery=sub,
        query_types=tuple(frozenset({r["articleType"]}) for r in rows),
        query_families=tuple(f if f is not None else "multi" for f in fams),
        query_labels=tuple(r["articleType"] for r in rows),
        gallery_types=tuple(r["articleType"] for r in rows),
        gallery_families=fams,
        exclude=tuple(range(len(rows))),
        query_colours=known,
        mirror=False,
        exact_query=tuple(r["baseColour"] for r in rows),
        exact_gallery=tuple(r["baseColour"] for r in rows),
    )


@dataclass
class ColourTaskResult:
    """Scores of one model on one colour task, with and without the colour stage."""

    task: str
    model: str
    description: str
    scores: ColourScores
    without_colour: ColourScores
    ranked: np.ndarray = field(repr=False)
    query_colours: np.ndarray = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    exact: ColourScores | None = None  # type + the very same colour name, where the task knows them
    exact_without: ColourScores | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "description": self.description,
            "scores": self.scores.to_dict(),
            "without_colour": self.without_colour.to_dict(),
            **(
                {"exact_colour": self.exact.to_dict(), "exact_colour_without": self.exact_without.to_dict()}
                if self.exact is not None and self.exact_without is not None
                else {}
            ),
            "settings": self.settings,
            "seconds": round(self.seconds, 1),
        }


def evaluate_colour_task(
    task: ColourTask,
    extractor: Extractor,
    query_colour: ColourFn | None,
    label: str = "",
    cache: EmbeddingCache | None = None,
    k: int = 10,
    candidates: int = 200,
    weight: float = DEFAULT_COLOUR_WEIGHT,
    query_flip: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    kind_weight: float = DEFAULT_KIND_WEIGHT,
    voters: int = KIND_VOTERS,
    kind_model: KindModel | None = None,
) -> ColourTaskResult:
    """Rank ``task`` with ``extractor`` and the colour stage; ``query_colour(path)`` gives a photo's colour
    distribution (unused when the task knows its queries' colours). ``kind_model``: photos are then ranked by the
    kind stage too, as a catalogue ranks them (the head reads the picture and its mirror; no vote)."""
    start = time.perf_counter()
    cache = cache if cache is not None else EmbeddingCache()
    g, _ = cache.embed(extractor, task.gallery, progress=_part(progress, "gallery"))
    if task.queries is task.gallery:
        q, mirrored = g, None
    else:
        q, _ = cache.embed(extractor, task.queries, progress=_part(progress, "queries"))
        mirrored = None
        if query_flip and task.mirror:
            mirrored, _ = cache.embed(extractor, task.queries, progress=_part(progress, "mirrored"), flip=True)
    n_cand = max(k, min(candidates, len(task.gallery)))
    idx, sims = rank_exact(q, g, n_cand, task.exclude, mirrored=mirrored)
    if task.query_colours is not None:
        colours = task.query_colours
    else:
        if query_colour is None:
            raise ValueError(f"task {task.name!r} needs a query colour detector")
        colours = np.stack([query_colour(p) for p in task.queries.paths]) if len(task.queries) else np.zeros((0, 12))
    fam_idx = np.array([FAMILIES.index(f) if f is not None else -1 for f in task.gallery_families], dtype=np.int64)
    reads = _branch_reads(extractor, kind_model, task.queries.paths, mirrored is not None) if kind_model else None
    priors = _kind_priors(kind_model, q, mirrored, task.gallery_types, reads) if kind_model is not None else None
    ranked = idx.copy()
    for i in range(len(idx)):
        valid = idx[i] >= 0
        cand = idx[i][valid]
        kinds = [task.gallery_types[j] for j in cand]
        vote = 0.0 if priors is not None else kind_weight
        order, keys, _ = colour_kind_order(sims[i][valid], kinds, fam_idx[cand], colours[i], weight, vote, voters)
        if priors is not None:
            again, _ = kind_order(keys, [kinds[j] for j in order], priors[i], k)
            order = order[again]
        ranked[i, : cand.size] = cand[order]
    args = (task.query_types, task.query_families, task.gallery_types, task.gallery_families, k, task.exclude)
    exact = exact_without = None
    if task.exact_query is not None and task.exact_gallery is not None:
        strict = (task.query_types, task.exact_query, task.gallery_types, task.exact_gallery, k, task.exclude)
        exact, exact_without = colour_scores(ranked, *strict), colour_scores(idx, *strict)
    return ColourTaskResult(
        task=task.name,
        model=label,
        description=task.description,
        scores=colour_scores(ranked, *args),
        without_colour=colour_scores(idx, *args),
        ranked=ranked[:, :k],
        query_colours=colours,
        settings={
            "candidates": n_cand,
            "weight": weight,
            "kind_weight": kind_weight,
            "voters": voters,
            "query_flip": bool(query_flip and task.mirror),
            "kind_stage": priors is not None,
        },
        seconds=time.perf_counter() - start,
        exact=exact,
        exact_without=exact_without,
    )


def _head_for(extractor: Extractor) -> KindModel | None:
    """The shipped kind head when it reads ``extractor``'s vectors (as a catalogue of that model would use it)."""
    from lookalike.extractors.identity import model_family

    model = default_kind_model()
    fits = model is not None and model.dim == extractor.dim
    return model if fits and model_family(extractor.name) == model_family(model.embedding) else None  # type: ignore[union-attr]


def _branch_reads(
    extractor: Extractor, model: KindModel, paths: Sequence[Path], mirror: bool
) -> list[np.ndarray] | None:
    """The kind branch's probabilities of each query's views (the picture, and its mirror image with ``mirror``),
    as a catalogue's search reads them; None where ``extractor``'s model has no kind branch."""
    from lookalike.extractors.base import with_mirror
    from lookalike.extractors.kind_branch import kind_branch_of
    from lookalike.imaging.decode import load_image

    branch = kind_branch_of(extractor, model)
    if branch is None:
        return None
    out = []
    for path in paths:
        img = load_image(path)
        views = with_mirror(img) if mirror else [img]
        out.append(branch.read(np.stack([branch.preprocess(v) for v in views]))[1])
    return out


def _kind_priors(
    model: KindModel,
    q: np.ndarray,
    mirrored: np.ndarray | None,
    gallery_types: Sequence[str],
    reads: list[np.ndarray] | None = None,
) -> list[KindPrior]:
    """Each query's kind prior over the gallery's kinds, as :func:`lookalike.catalog.kinds.kind_plan` makes it
    (``reads``: the kind branch's probabilities of each query's views, where it has one)."""
    kinds = sorted(set(gallery_types))
    out = []
    for i in range(len(q)):
        views = q[i : i + 1] if mirrored is None else np.stack([q[i], mirrored[i]])
        read = reads[i] if reads is not None else None
        out.append(KindPrior(catalogue_distribution(model.classes, model.predict(views, read), kinds)))
    return out


def _part(progress: Callable[[str, int, int], None] | None, part: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(part, done, total)


COLOUR_TASKS = {
    "photo-colour": lambda root: photo_colour_task(root, heldout_seed=0),
    "photo-colour-all": lambda root: photo_colour_task(root, heldout_seed=None),
    "catalog-colour": catalogue_colour_task,
}


def run_colour_evaluation(
    names: Sequence[str],
    models: Sequence[str],
    root: str | os.PathLike[str] | None = None,
    cache: EmbeddingCache | None = None,
    progress: Callable[[str, str, str, int, int], None] | None = None,
    query_flip: bool = True,
    k: int = 10,
) -> list[tuple[ColourTaskResult, ColourTask]]:
    """Every model on every colour task named in ``names`` (keys of :data:`COLOUR_TASKS`), with the shipped
    colour detector for photos; ``progress(model, task, part, done, total)``."""
    from lookalike.colour.detect import default_colour_detector
    from lookalike.evaluate.harness import load_model
    from lookalike.imaging.decode import load_image

    detector = default_colour_detector()

    def detect(path: Path) -> np.ndarray:
        return detector.detect(load_image(path)).probabilities

    tasks = [COLOUR_TASKS[n](root) for n in names]
    out = []
    for spec in models:
        label, extractor = load_model(spec)
        for task in tasks:
            report = functools.partial(progress, label, task.name) if progress is not None else None
            photos = task.query_colours is None
            result = evaluate_colour_task(
                task,
                extractor,
                detect,
                label,
                cache,
                k,
                weight=DEFAULT_COLOUR_WEIGHT if photos else PRODUCT_COLOUR_WEIGHT,
                query_flip=query_flip,
                progress=report,
                kind_weight=PHOTO_KIND_WEIGHT if photos else DEFAULT_KIND_WEIGHT,
                kind_model=_head_for(extractor) if photos else None,
            )
            out.append((result, task))
    return out
