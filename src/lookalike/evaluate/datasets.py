"""The labelled query/gallery sets that search quality is measured on (see EVALUATION.md).

* :func:`catalog_task`: catalogue -> catalogue on ``fashion-product-images-224``. By default the test
  split (ids divisible by 5), each query ranked against the other test products; ``split="all"`` ranks
  every product against all others (the setting of the reference numbers).
* :func:`photo_task`: shopper's photos of ``clothing-photos-dev`` -> all catalogue products.
* :func:`custom_task`: a user's own query CSV against a gallery CSV, relevance by one label field.

A task holds paths and labels only; embedding and ranking live in :mod:`lookalike.evaluate.harness`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lookalike.errors import SourceError

__all__ = [
    "CATALOG_DATASET",
    "DROPPED_PHOTO_LABELS",
    "PHOTO_DATASET",
    "Criterion",
    "EvalTask",
    "ImageSet",
    "catalog_gallery",
    "catalog_rows",
    "catalog_task",
    "custom_task",
    "default_datasets_root",
    "photo_task",
    "resolve_datasets_root",
    "split_contributors",
    "subsample_queries",
    "task2_photo_rows",
]

CATALOG_DATASET = "fashion-product-images-224"
PHOTO_DATASET = "clothing-photos-dev"
#: Photo labels with no catalogue equivalent (EVALUATION.md, task 2).
DROPPED_PHOTO_LABELS = frozenset({"Body", "Undershirt", "Blazer"})
_IMAGE_COLUMNS = ("image", "image_path", "path", "file")


@dataclass(frozen=True)
class ImageSet:
    """Images to embed: ``name`` names the dataset in cache keys; ``ids`` are stable item ids."""

    name: str
    paths: tuple[Path, ...]
    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.ids):
            raise ValueError(f"{len(self.paths)} paths but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        """The images at ``indices``, in that order."""
        return ImageSet(self.name, tuple(self.paths[i] for i in indices), tuple(self.ids[i] for i in indices))


@dataclass(frozen=True)
class Criterion:
    """One definition of relevance: gallery item j is relevant to query i when
    ``gallery_labels[j] in query_accepts[i]``."""

    name: str
    gallery_labels: tuple[str, ...]
    query_accepts: tuple[frozenset[str], ...]


@dataclass(frozen=True)
class EvalTask:
    """A labelled retrieval task: queries ranked against a gallery under one or more criteria.

    ``query_groups`` labels each query for per-label and macro averages; ``exclude[i]`` is the gallery
    index never returned for query i (the query itself), or -1.
    """

    name: str
    description: str
    queries: ImageSet
    gallery: ImageSet
    criteria: tuple[Criterion, ...]
    query_groups: tuple[str, ...]
    exclude: tuple[int, ...]
    headline: tuple[tuple[str, str], ...] = ()  # (criterion, metric); "@k" stands for the cut-off
    info: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nq, ng = len(self.queries), len(self.gallery)
        if not self.criteria:
            raise ValueError("a task needs at least one relevance criterion")
        for c in self.criteria:
            if len(c.query_accepts) != nq or len(c.gallery_labels) != ng:
                raise ValueError(f"criterion {c.name!r} does not match {nq} queries x {ng} gallery items")
        if len(self.query_groups) != nq or len(self.exclude) != nq:
            raise ValueError("query_groups and exclude need one entry per query")

    def criterion(self, name: str) -> Criterion:
        """The criterion called ``name``."""
        for c in self.criteria:
            if c.name == name:
                return c
        raise KeyError(name)


# --- dataset root -----------------------------------------------------------------------------------
def default_datasets_root() -> Path:
    """``$LOOKALIKE_DATASETS``, else ``../shared/datasets`` next to the repository (or the working dir)."""
    env = os.environ.get("LOOKALIKE_DATASETS")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[3]
    for candidate in (repo.parent / "shared" / "datasets", Path.cwd().parent / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    return repo.parent / "shared" / "datasets"


def resolve_datasets_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` or the default, checked to exist."""
    path = Path(root).expanduser() if root is not None else default_datasets_root()
    if not path.is_dir():
        raise SourceError(f"datasets folder not found: {path} (pass --datasets DIR or set LOOKALIKE_DATASETS)")
    return path


# --- CSV helpers ------------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise SourceError(f"{path}: no rows")
    return rows


def _column(rows: list[dict[str, str]], wanted: Sequence[str], path: Path, what: str) -> str:
    header = list(rows[0])
    for name in wanted:
        if name in header:
            return name
    raise SourceError(f"{path}: no {what} column (looked for {', '.join(wanted)}; found {', '.join(header)})")


def _resolve(base: Path, value: str) -> Path:
    p = Path(value.strip()).expanduser()
    return p if p.is_absolute() else base / p


# --- task 1: catalogue -> catalogue -----------------------------------------------------------------
def catalog_task(root: str | os.PathLike[str] | None = None, split: str = "test") -> EvalTask:
    """Catalogue -> catalogue: relevance by ``type`` (articleType) and ``type+colour`` (+ baseColour).

    ``split="test"``: the products whose id is divisible by 5, each ranked against the other test
    products (the protocol). ``split="all"``: every product against all others (the reference setting).
    """
    if split not in ("test", "all"):
        raise ValueError(f"split is 'test' or 'all', got {split!r}")
    folder = resolve_datasets_root(root) / CATALOG_DATASET
    rows = _read_csv(folder / "labels.csv")
    if split == "test":
        rows = [r for r in rows if int(r["id"]) % 5 == 0]
    images = ImageSet(CATALOG_DATASET, tuple(folder / r["image"] for r in rows), tuple(r["id"] for r in rows))
    types = tuple(r["articleType"] for r in rows)
    type_colour = tuple(f"{r['articleType']} / {r['baseColour']}" for r in rows)
    criteria = (
        Criterion("type", types, tuple(frozenset([t]) for t in types)),
        Criterion("type+colour", type_colour, tuple(frozenset([t]) for t in type_colour)),
    )
    name = "catalog" if split == "test" else "catalog-full"
    scope = "test split (id % 5 == 0)" if split == "test" else f"all {len(rows):,} products"
    return EvalTask(
        name=name,
        description=f"catalogue -> catalogue, {scope}, each query ranked against the other products",
        queries=images,
        gallery=images,
        criteria=criteria,
        query_groups=types,
        exclude=tuple(range(len(rows))),
        headline=(("type", "mP@k"), ("type+colour", "mP@k"), ("type", "mAP@k"), ("type", "mP@1")),
        info={"dataset": CATALOG_DATASET, "split": split},
    )


def catalog_rows(root: Path) -> tuple[ImageSet, list[dict[str, str]]]:
    """All catalogue products: their pictures and their ``labels.csv`` rows, in the same order."""
    folder = root / CATALOG_DATASET
    rows = _read_csv(folder / "labels.csv")
    images = ImageSet(CATALOG_DATASET, tuple(folder / r["image"] for r in rows), tuple(r["id"] for r in rows))
    return images, rows


def catalog_gallery(root: Path) -> tuple[ImageSet, tuple[str, ...]]:
    """All catalogue products and their articleType."""
    images, rows = catalog_rows(root)
    return images, tuple(r["articleType"] for r in rows)


# --- task 2: shopper's photo -> catalogue -----------------------------------------------------------
def split_contributors(senders: Sequence[str], seed: int = 0, train_fraction: float = 0.5) -> set[str]:
    """Seeded split of contributors (one entry of ``senders`` per photo): the returned senders, about
    ``train_fraction`` of the photos taken in a seeded random order, may be trained on; the others are
    held out. ``lookalike train`` and the ``photo-heldout`` task share this split."""
    counts: dict[str, int] = {}
    for s in senders:
        counts[s] = counts.get(s, 0) + 1
    ordered = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(ordered))
    chosen: set[str] = set()
    total, target = 0, train_fraction * len(senders)
    for i in order:
        s = ordered[i]
        if total + counts[s] > target and chosen:
            continue
        chosen.add(s)
        total += counts[s]
    return chosen


def task2_photo_rows(rows: list[dict[str, str]], mapping: dict[str, list[str]]) -> list[dict[str, str]]:
    """The rows of ``labels.csv`` task 2 keeps: labels the map knows, less Body, Undershirt and Blazer."""
    return [r for r in rows if r["label"] in mapping and r["label"] not in DROPPED_PHOTO_LABELS]


def photo_task(root: str | os.PathLike[str] | None = None, heldout_seed: int | None = None) -> EvalTask:
    """Shopper's photos -> all catalogue products; relevant when the product's articleType is one of the
    types that ``label_to_articletype.json`` lists for the photo's label.

    Labels Body, Undershirt and Blazer, and labels missing from the map ('Not sure', 'Skip', 'Other'),
    are dropped. With ``heldout_seed``, only the photos of the contributors that
    :func:`split_contributors` (with that seed) holds out from training are queries (task
    ``photo-heldout``).
    """
    base = resolve_datasets_root(root)
    folder = base / PHOTO_DATASET
    try:
        mapping: dict[str, list[str]] = json.loads((folder / "label_to_articletype.json").read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {folder / 'label_to_articletype.json'}: {exc}") from exc
    rows = _read_csv(folder / "labels.csv")
    image_col = _column(rows, ("image_path", "image"), folder / "labels.csv", "image")
    kept = task2_photo_rows(rows, mapping)
    name = "photo"
    if heldout_seed is not None:
        trained = split_contributors([r["sender_id"] for r in kept], seed=heldout_seed)
        kept = [r for r in kept if r["sender_id"] not in trained]
        name = "photo-heldout"
    dropped: dict[str, int] = {}
    for r in rows:
        if r["label"] not in mapping or r["label"] in DROPPED_PHOTO_LABELS:
            dropped[r["label"]] = dropped.get(r["label"], 0) + 1
    paths = []
    for r in kept:
        value = r[image_col]
        if image_col == "image" and not Path(value).suffix:
            value = f"images/{value}.jpg"
        paths.append(_resolve(folder, value))
    queries = ImageSet(PHOTO_DATASET, tuple(paths), tuple(r["image"] for r in kept))
    gallery, types = catalog_gallery(base)
    labels = tuple(r["label"] for r in kept)
    crit = Criterion("type", types, tuple(frozenset(mapping[lab]) for lab in labels))
    return EvalTask(
        name=name,
        description=f"shopper's photo ({PHOTO_DATASET}"
        + (f", contributors held out from training, seed {heldout_seed}" if heldout_seed is not None else "")
        + f") -> all {len(gallery):,} catalogue products",
        queries=queries,
        gallery=gallery,
        criteria=(crit,),
        query_groups=labels,
        exclude=(-1,) * len(kept),
        headline=(("type", "mP@k"), ("type", "mP@1"), ("type", "macroP@k")),
        info={"dataset": PHOTO_DATASET, "dropped_labels": dict(sorted(dropped.items())), "map": mapping},
    )


# --- (c) the user's own labelled set ------------------------------------------------------------------
def custom_task(
    queries_csv: str | os.PathLike[str],
    gallery_csv: str | os.PathLike[str],
    label_field: str,
    exclude_self: bool = False,
    name: str = "custom",
) -> EvalTask:
    """A user's query set against a gallery, relevant when the gallery item's ``label_field`` is one of
    the query's labels.

    The query CSV has an image column (``image``, ``image_path``, ``path`` or ``file``) and a label
    column (``label_field`` or ``label``; several accepted labels separated by ``|``). The gallery CSV has
    an image column and ``label_field``; an ``id`` column is used when present. Relative image paths are
    read from each CSV's folder. With ``exclude_self``, a gallery item that is the query's own file is
    never returned.
    """
    qpath, gpath = Path(queries_csv), Path(gallery_csv)
    qrows, grows = _read_csv(qpath), _read_csv(gpath)
    q_image = _column(qrows, _IMAGE_COLUMNS, qpath, "image")
    q_label = _column(qrows, (label_field, "label"), qpath, "label")
    g_image = _column(grows, _IMAGE_COLUMNS, gpath, "image")
    g_label = _column(grows, (label_field,), gpath, f"{label_field!r}")
    g_paths = tuple(_resolve(gpath.parent, r[g_image]) for r in grows)
    g_ids = tuple(r.get("id") or str(i) for i, r in enumerate(grows))
    q_paths = tuple(_resolve(qpath.parent, r[q_image]) for r in qrows)
    q_ids = tuple(r.get("id") or str(i) for i, r in enumerate(qrows))
    accepts = []
    for i, r in enumerate(qrows):
        labels = frozenset(part.strip() for part in r[q_label].split("|") if part.strip())
        if not labels:
            raise SourceError(f"{qpath}: query row {i + 1} has no label")
        accepts.append(labels)
    exclude = [-1] * len(qrows)
    if exclude_self:
        where = {p.resolve(): j for j, p in enumerate(g_paths)}
        exclude = [where.get(p.resolve(), -1) for p in q_paths]
    crit = Criterion(label_field, tuple(r[g_label].strip() for r in grows), tuple(accepts))
    return EvalTask(
        name=name,
        description=f"{qpath.name} -> {gpath.name}, relevant: same {label_field}",
        queries=ImageSet(f"custom:{qpath.stem}", q_paths, q_ids),
        gallery=ImageSet(f"custom:{gpath.stem}", g_paths, g_ids),
        criteria=(crit,),
        query_groups=tuple(" | ".join(sorted(a)) for a in accepts),
        exclude=tuple(exclude),
        headline=(
            (label_field, "mP@k"),
            (label_field, "mP@1"),
            (label_field, "mAP@k"),
            (label_field, "macroP@k"),
        ),
        info={"queries_csv": str(qpath), "gallery_csv": str(gpath), "label_field": label_field},
    )


# --- subsampling ------------------------------------------------------------------------------------
def subsample_queries(task: EvalTask, max_queries: int | None, seed: int = 0) -> EvalTask:
    """At most ``max_queries`` queries drawn without replacement with ``seed`` (kept in their order);
    the gallery is unchanged."""
    n = len(task.queries)
    if max_queries is None or max_queries >= n:
        return task
    if max_queries <= 0:
        raise ValueError(f"max_queries must be positive, got {max_queries}")
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_queries, replace=False)).tolist()
    criteria = tuple(
        Criterion(c.name, c.gallery_labels, tuple(c.query_accepts[i] for i in keep)) for c in task.criteria
    )
    info = dict(task.info, subsample={"max_queries": max_queries, "seed": seed, "of": n})
    return replace(
        task,
        queries=task.queries.subset(keep),
        criteria=criteria,
        query_groups=tuple(task.query_groups[i] for i in keep),
        exclude=tuple(task.exclude[i] for i in keep),
        info=info,
    )
