"""A folder of pictures as products: one per picture, per numbered set, or per product folder.

Rules (files are taken in sorted order; a product's id is checked by :func:`validate_product_id`):

* **One picture, one product**: ``shoes/123.jpg`` is product ``shoes/123`` (the path without extension);
  a picture in a sub-folder gets the top sub-folder's name as its category (``shoes``).
* **Numbered pictures**: ``ID.jpg`` with ``ID_2.jpg``, ``ID-3.jpg`` or ``ID (4).jpg`` (numbers 1-99)
  in the same folder are one product ``ID``: ``ID.jpg`` first, then by number. Without ``ID.jpg`` nothing
  is grouped (so ``IMG_0001.jpg``, ``IMG_0002.jpg`` stay separate products).
* **A product folder**: a folder (not the top one) with pictures and no sub-folder with pictures whose
  every picture is named as a view or a position: ``1``, ``02``, ``main``, ``front``, ``back``, ``side``,
  ``detail``, ``model``, ``cutout``, ``flat``, ``worn``, ... (see :data:`VIEW_NAMES`), optionally numbered
  (``detail_2``, ``image1``) or prefixed by the folder's own name (``ABC123_front``; ``ABC123.jpg`` alone
  is the main picture). It is one product: its id the folder's path (``shirts/ABC123``), its category the
  top sub-folder as above. Pictures: main/front/cut-out first, then numbered ones, then the other views.
  A category folder of products (``shoes/123.jpg``, ``shoes/a.jpg``) does not match and stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.source_values import IMAGE_EXTENSIONS

__all__ = ["VIEW_NAMES", "FolderProduct", "folder_products"]

#: Picture names that make a folder a product folder, in the order its pictures are shown.
VIEW_NAMES = (
    "main", "hero", "primary", "default", "front", "cutout", "packshot", "flat", "flatlay", "ghost",
    "model", "worn", "onmodel", "lifestyle", "look", "outfit", "side", "left", "right", "back", "rear",
    "top", "bottom", "sole", "inside", "detail", "details", "closeup", "zoom", "texture", "fabric", "label",
    "alt", "alternate", "view", "image", "img", "photo", "picture", "pic", "shot",
)  # fmt: skip
_FIRST = {"main", "hero", "primary", "default", "front", "cutout", "packshot"}
_VIEW = re.compile(r"(?P<word>[a-z]+)?[\s_\-]?(?P<n>\d{1,2})?")
_NUMBERED = re.compile(r"(?P<base>.+?)(?:[_-](?P<n>\d{1,2})|\s*\((?P<p>\d{1,2})\))")


@dataclass
class FolderProduct:
    """One product found in a folder: its id, title, category and pictures (main first)."""

    id: str
    title: str
    category: str | None
    pictures: list[Path] = field(default_factory=list)


def _view_order(stem: str, folder: str) -> tuple[int, int, int] | None:
    """Where a picture goes in a product folder; None: the name is not a view or a position."""
    name, own = stem.lower(), folder.lower()
    if name == own:
        return (0, 0, 0)
    if name.startswith(own) and len(name) > len(own) and name[len(own)] in " _-":
        name = name[len(own) + 1 :]
    m = _VIEW.fullmatch(name)
    if not m or not (m.group("word") or m.group("n")):
        return None
    word, n = m.group("word"), int(m.group("n") or 0)
    if word is None:
        return (1, n, 0)
    if word not in VIEW_NAMES:
        return None
    return (0 if word in _FIRST else 2, VIEW_NAMES.index(word), n)


def _category(rel: Path) -> str | None:
    return rel.parts[0] if len(rel.parts) > 1 else None


def _product_folder(folder: Path, files: list[Path]) -> list[Path] | None:
    """The folder's pictures in order when it is a product folder, else None."""
    keys = {}
    for f in files:
        key = _view_order(f.stem, folder.name)
        if key is None:
            return None
        keys[f] = (key, f.name)
    return sorted(files, key=keys.__getitem__)


def _numbered_sets(files: list[Path]) -> dict[str, list[Path]]:
    """Base stem -> its pictures in order (base first, then by number), for the files of one folder."""
    stems = {f.stem for f in files}

    def base_of(stem: str) -> tuple[str, int]:
        m = _NUMBERED.fullmatch(stem)
        if m and m.group("base") in stems:
            root, _ = base_of(m.group("base"))
            return root, int(m.group("n") or m.group("p"))
        return stem, 0

    sets: dict[str, list[tuple[int, str, Path]]] = {}
    for f in files:
        base, n = base_of(f.stem)
        sets.setdefault(base, []).append((n, f.name, f))
    return {base: [f for _, _, f in sorted(items)] for base, items in sets.items()}


def folder_products(root: Path) -> Iterator[FolderProduct]:
    """The products of a folder of pictures (see the module docstring), in the order of their first file."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    # folders with pictures below them (not leaves)
    inner = {parent for folder in by_folder for parent in folder.parents if parent != folder}
    products: dict[str, FolderProduct] = {}
    for folder, group in by_folder.items():
        rel_folder = folder.relative_to(root)
        ordered = None if folder == root or folder in inner else _product_folder(folder, group)
        if ordered is not None:
            pid = rel_folder.as_posix()
            products[pid] = FolderProduct(pid, folder.name, _category(rel_folder), ordered)
            continue
        for base, pictures in _numbered_sets(group).items():
            rel = rel_folder / base
            products[rel.as_posix()] = FolderProduct(rel.as_posix(), base, _category(rel), pictures)
    order = {f: i for i, f in enumerate(files)}
    yield from sorted(products.values(), key=lambda p: min(order[f] for f in p.pictures))
