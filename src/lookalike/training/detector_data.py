"""The garment detector's data: catalogue cut-outs by detector class, shoppers' photo backgrounds, outfits.

Products come from ``fashion-product-images-224`` (cut out with their catalogue masks, cached as the
segmenter's are), each in its detector class (:func:`lookalike.garment.kinds.kind_of` of its article type;
products of no class are left out). The split is EVALUATION.md's: id % 5 == 0 is the test split, never
trained on. Photographic backgrounds are cut from the photos of ``clothing-photos-dev`` contributors that the
evaluation's split lets a model train on, none of them in ``colours.csv``. :func:`make_outfits` draws the
pictures (:func:`lookalike.training.outfits.outfit`) in worker processes: the same seed gives the same outfits.
"""

from __future__ import annotations

import csv
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.errors import SourceError
from lookalike.garment.kinds import CLASSES, kind_of
from lookalike.training.outfits import Outfit, Pools, outfit, photo_backgrounds
from lookalike.training.segment import catalogue_cutouts

__all__ = [
    "OutfitSet",
    "catalogue_pools",
    "describe_pools",
    "make_outfits",
    "training_photo_backgrounds",
    "training_photo_samples",
]

CATALOG_DATASET = "fashion-product-images-224"
PHOTO_DATASET = "clothing-photos-dev"


@dataclass
class OutfitSet:
    """Pictures (n, size, size, 3) uint8 and, per picture, its boxes (k, 4) and classes (k,)."""

    images: np.ndarray
    boxes: list[np.ndarray]
    classes: list[np.ndarray]
    layouts: list[str]

    def __len__(self) -> int:
        return len(self.images)


def _catalogue_rows(datasets_dir: Path) -> list[dict[str, str]]:
    path = datasets_dir / CATALOG_DATASET / "labels.csv"
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc


def catalogue_pools(
    datasets_dir: Path, cache: Path | None = None, limit: int | None = None
) -> tuple[Pools, Pools, dict[int, str]]:
    """(training pools, test pools, article type by product id): the cut-outs of the products with a detector
    class, by class; ``limit``: every k-th product only (tiny runs)."""
    rows = [r for r in _catalogue_rows(datasets_dir) if kind_of(r["articleType"]) is not None]
    if limit is not None:
        rows = rows[:: max(1, len(rows) // max(1, limit))][:limit]
    folder = datasets_dir / CATALOG_DATASET
    types = {int(r["id"]): r["articleType"] for r in rows}
    cuts = catalogue_cutouts([(int(r["id"]), folder / r["image"]) for r in rows], cache)
    train: Pools = {}
    test: Pools = {}
    for pid, cut in cuts:
        cls = CLASSES.index(kind_of(types[pid]))  # type: ignore[arg-type]
        (test if pid % 5 == 0 else train).setdefault(cls, []).append(cut)
    return train, test, types


def training_photo_backgrounds(datasets_dir: Path, limit: int = 600, seed: int = 0) -> list[Image.Image]:
    """Background bands of up to ``limit`` photos of the contributors a model may train on (none of
    ``colours.csv``'s photos), cut around the shipped segmenter's garment mask."""
    from lookalike.garment import default_segmenter

    folder = datasets_dir / PHOTO_DATASET
    paths = [folder / r["image_path"] for r in _training_photos(datasets_dir, seed)]
    rng = np.random.default_rng(seed)
    photos = [_open_photo(paths[i]) for i in rng.permutation(len(paths))[:limit]]
    seg = default_segmenter()
    return photo_backgrounds(photos, seg.predict)


_EXTRA_LABELS = {"Blazer": "Blazers", "Body": "Tops", "Undershirt": "Innerwear Vests"}


def _training_photos(datasets_dir: Path, seed: int) -> list[dict[str, str]]:
    """The rows of the photos of the contributors a model may train on, none of them in ``colours.csv``."""
    from lookalike.evaluate.colour_task import split_photo_contributors

    folder = datasets_dir / PHOTO_DATASET
    try:
        with (folder / "labels.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        with (folder / "colours.csv").open(newline="", encoding="utf-8") as fh:
            labelled = {r["image"] for r in csv.DictReader(fh)}
    except OSError as exc:
        raise SourceError(f"cannot read the photos' labels in {folder}: {exc}") from exc
    allowed = split_photo_contributors(datasets_dir, seed)
    return [r for r in rows if r["sender_id"] in allowed and r["image"] not in labelled]


def _open_photo(path: Path, side: int = 256) -> Image.Image:
    with Image.open(path) as img:
        img.draft("RGB", (side, side))
        return img.convert("RGB")


def training_photo_samples(datasets_dir: Path, size: int, limit: int = 1500, seed: int = 0) -> OutfitSet:
    """Up to ``limit`` shoppers' photos of the training contributors (none of ``colours.csv``) as pictures with one
    box each: the shipped segmenter's garment mask (probability >= 0.5) boxed, its kind from the photo's label
    (``label_to_articletype.json``'s first type). Photos whose mask covers under 3 % are left out."""
    import json

    from lookalike.garment import default_segmenter

    folder = datasets_dir / PHOTO_DATASET
    mapping = json.loads((folder / "label_to_articletype.json").read_text())
    rng = np.random.default_rng(seed + 7)
    rows = _training_photos(datasets_dir, seed)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    seg = default_segmenter()
    images, boxes, classes = [], [], []
    for r in rows:
        if len(images) >= limit:
            break
        article = _EXTRA_LABELS.get(r["label"]) or (mapping.get(r["label"]) or [None])[0]
        kind = kind_of(article)
        if kind is None:
            continue
        photo = _open_photo(folder / r["image_path"])
        prob = seg.predict(photo)
        ys, xs = np.nonzero(prob >= 0.5)
        if len(xs) < 0.03 * prob.size:
            continue
        gh, gw = prob.shape
        boxes.append(np.array([[xs.min() / gw, ys.min() / gh, (xs.max() + 1) / gw, (ys.max() + 1) / gh]], np.float32))
        classes.append(np.array([CLASSES.index(kind)], np.int64))
        images.append(np.asarray(photo.resize((size, size), Image.Resampling.BILINEAR)))
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return OutfitSet(stacked, boxes, classes, ["photo"] * len(images))


_WORK: dict[str, object] = {}  # what forked workers read (the pools and backgrounds are not pickled)


def _draw(args: tuple[int, int, int]) -> list[Outfit]:
    seed, count, size = args
    rng = np.random.default_rng(seed)
    pools: Pools = _WORK["pools"]  # type: ignore[assignment]
    photos: list[Image.Image] = _WORK["photos"]  # type: ignore[assignment]
    drawn = [outfit(pools, rng, size, photos) for _ in range(count)]
    for o in drawn:
        o.sources = ()  # the cut-outs stay here: only the pictures and boxes go back
    return drawn


def make_outfits(
    pools: Pools, n: int, seed: int, size: int, photos: list[Image.Image] | None = None, workers: int = 2
) -> OutfitSet:
    """``n`` outfits of ``pools`` (``workers`` forked processes, chunks of 50 with seeds derived from ``seed``:
    the same for any number of workers)."""
    chunks = [(seed * 100_003 + i, min(50, n - start), size) for i, start in enumerate(range(0, n, 50))]
    _WORK.update(pools=pools, photos=photos or [])
    try:
        if workers > 1 and len(chunks) > 1:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                drawn = [o for part in pool.map(_draw, chunks) for o in part]
        else:
            drawn = [o for c in chunks for o in _draw(c)]
    finally:
        _WORK.clear()
    images = np.stack([np.asarray(o.image) for o in drawn]) if drawn else np.zeros((0, size, size, 3), np.uint8)
    return OutfitSet(images, [o.boxes for o in drawn], [o.classes for o in drawn], [o.layout for o in drawn])


def describe_pools(pools: Pools) -> dict[str, int]:
    """How many cut-outs each class has."""
    return {CLASSES[c]: len(v) for c, v in sorted(pools.items())}
