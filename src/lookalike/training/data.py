"""Training and evaluation records from the datasets folder (see EVALUATION.md for the splits).

* Catalogue products of ``fashion-product-images-224``: the test split (id % 5 == 0) is never trained on.
* Shopper's photos of ``clothing-photos-dev``: labels mapped to catalogue article types; contributors
  (``sender_id``) are split in two with a seed, photos of held-out contributors are never trained on.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import SourceError

__all__ = [
    "CATALOG_DATASET",
    "PHOTO_DATASET",
    "SMALL_DATASET",
    "CatalogItem",
    "PhotoItem",
    "Vocab",
    "is_test_id",
    "load_catalog",
    "load_photos",
    "load_small_catalog",
    "split_senders",
]

CATALOG_DATASET = "fashion-product-images-224"
SMALL_DATASET = "fashion-product-images-small"  # the full 44k catalogue at 60 x 80
PHOTO_DATASET = "clothing-photos-dev"
DROPPED_PHOTO_LABELS = frozenset({"Body", "Undershirt", "Blazer"})


@dataclass(frozen=True)
class CatalogItem:
    """One catalogue product with its labels."""

    id: int
    path: Path
    article_type: str
    colour: str
    gender: str


@dataclass(frozen=True)
class PhotoItem:
    """One shopper's photo: its label, the catalogue types the label stands for, and its contributor."""

    image: str
    path: Path
    label: str
    types: tuple[str, ...]
    sender: str


def is_test_id(product_id: int) -> bool:
    """The catalogue test split of EVALUATION.md: ids divisible by 5."""
    return product_id % 5 == 0


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc


def load_catalog(root: Path) -> list[CatalogItem]:
    """Every product of the 224 px catalogue, in file order."""
    folder = root / CATALOG_DATASET
    return [
        CatalogItem(int(r["id"]), folder / r["image"], r["articleType"], r["baseColour"] or "?", r["gender"])
        for r in _read_csv(folder / "labels.csv")
    ]


def load_small_catalog(root: Path, skip_ids: set[int]) -> list[CatalogItem]:
    """Products of the 60 x 80 full catalogue that may be trained on: not in the test split, not in
    ``skip_ids`` (the 224 px catalogue's products, trained on at full size), with an image file."""
    folder = root / SMALL_DATASET
    out = []
    for r in _read_csv(folder / "labels.csv"):
        pid = int(r["id"])
        if is_test_id(pid) or pid in skip_ids or r.get("has_image", "True") in ("False", "false", "0"):
            continue
        path = folder / (r.get("image") or f"images/{pid}.jpg")
        if r["articleType"] and path.is_file():
            out.append(CatalogItem(pid, path, r["articleType"], r["baseColour"] or "?", r["gender"]))
    return out


def load_photos(root: Path) -> list[PhotoItem]:
    """The labelled shopper's photos kept by the protocol (mapped labels, minus Body/Undershirt/Blazer)."""
    folder = root / PHOTO_DATASET
    try:
        mapping: dict[str, list[str]] = json.loads((folder / "label_to_articletype.json").read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {folder / 'label_to_articletype.json'}: {exc}") from exc
    out = []
    for r in _read_csv(folder / "labels.csv"):
        if r["label"] not in mapping or r["label"] in DROPPED_PHOTO_LABELS:
            continue
        path = folder / (r.get("image_path") or f"images/{r['image']}.jpg")
        out.append(PhotoItem(r["image"], path, r["label"], tuple(mapping[r["label"]]), r["sender_id"]))
    return out


def split_senders(photos: list[PhotoItem], seed: int, train_fraction: float = 0.5) -> set[str]:
    """Seeded split of contributors: the returned senders (about ``train_fraction`` of the photos,
    taken in a seeded random order) may be trained on; all others are held out (the evaluation's
    ``photo-heldout`` task uses the same split)."""
    from lookalike.evaluate.datasets import split_contributors

    return split_contributors([p.sender for p in photos], seed=seed, train_fraction=train_fraction)


class Vocab:
    """String labels <-> class indices (sorted, so the same data gives the same indices)."""

    def __init__(self, labels: list[str]) -> None:
        self.names = sorted(set(labels))
        self.index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, label: str) -> int:
        """Index of ``label`` (-1 when unknown)."""
        return self.index.get(label, -1)
