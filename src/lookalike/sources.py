"""Ingest sources: a folder of images or a product export (CSV/TSV), read into :class:`IngestRecord` rows.

Columns are matched by name (:mod:`lookalike.source_columns`); the defaults cover the Kaggle fashion
``labels.csv``/``styles.csv`` columns and the exports shops have: Shopify's product export, Google Merchant
Center feeds (TSV), Farfetch-style listings with dotted names. Rows with the same id are one product
(:mod:`lookalike.source_groups`); columns that map to no field are kept in the product's ``extra``. Image
paths are resolved relative to the file's folder; http(s) URLs are fetched at ingest. Folders:
:mod:`lookalike.source_folders`.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.errors import InvalidProductError, SourceError
from lookalike.product import Product, validate_product_id
from lookalike.source_columns import DEFAULT_COLUMNS, plan_columns, resolve_columns
from lookalike.source_folders import folder_products
from lookalike.source_groups import ProductGroup
from lookalike.source_skips import unreadable_entries
from lookalike.source_values import IMAGE_EXTENSIONS, clean, delimiter_of

__all__ = ["DEFAULT_COLUMNS", "IMAGE_EXTENSIONS", "IngestRecord", "read_csv", "read_folder", "resolve_columns"]

_FIELD_LIMIT = 1 << 26  # Shopify's Body (HTML) cells can pass csv's default 128 KiB


@dataclass
class IngestRecord:
    """A product and where its pictures are: local paths or http(s) URLs, in order, the first being the
    main picture (``source``; ``None``: none given). ``sources`` defaults to ``[source]``. ``error``: why the
    source's row cannot become a product (an unparseable price or stock value, say): the ingest reports it as
    that product's failure and goes on."""

    product: Product
    source: str | None
    sources: list[str] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        sources = [s for s in dict.fromkeys(self.sources or []) if s]
        if self.source and self.source not in sources:
            sources.insert(0, self.source)
        self.sources = sources
        self.source = sources[0] if sources else None


def read_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> Iterator[IngestRecord]:
    """Yield one record per product of a CSV or TSV export (the delimiter is read from the header line).

    Rows are grouped by id, in the order ids first appear (the whole file is read first); a product
    without pictures gets ``None``. ``columns``: ``{field: column}`` overrides (``images``: extra picture
    columns, comma-separated). A value that cannot be read gives a record with ``error``; a missing file,
    header or id column raises :class:`SourceError`, and so does a row without an id, after the products
    before it.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise SourceError(f"CSV file not found: {csv_path}")
    base = csv_path.resolve().parent
    try:
        fh = csv_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    groups: dict[str, ProductGroup] = {}
    stop: tuple[int, SourceError] | None = None  # a row without an id: raised after the products before it
    with fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError as exc:
            raise SourceError(f"{csv_path}: not UTF-8 text ({exc.reason})") from exc
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        reader = csv.DictReader(itertools.chain([first], fh), delimiter=delimiter_of(first))
        try:
            header = list(reader.fieldnames or [])
            if not header:
                raise SourceError(f"{csv_path} is empty or has no header row")
            plan = plan_columns(header, columns)
            if "id" not in plan.fields:
                raise SourceError(
                    f"{csv_path}: no id column (looked for {', '.join(DEFAULT_COLUMNS['id'])}); "
                    "map one with --map id=COLUMN"
                )
            id_col, end = plan.fields["id"], reader.line_num
            for row in reader:
                line, end = end + 1, reader.line_num
                pid = clean(row.get(id_col)) or (row.get(id_col) or "")
                try:
                    validate_product_id(pid)
                except InvalidProductError as exc:
                    stop = stop or (len(groups), SourceError(f"{csv_path} line {line}: {exc}"))
                    continue
                group = groups.get(pid)
                if group is None:
                    group = groups[pid] = ProductGroup(pid)
                group.add(row, line, plan)
        except csv.Error as exc:
            raise SourceError(f"{csv_path}: malformed CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(f"{csv_path}: not UTF-8 text ({exc.reason})") from exc
    pending = list(groups.values())[::-1]  # popped from the end: a yielded product's rows can go
    groups.clear()
    for i in range(len(pending)):
        if stop is not None and i == stop[0]:
            raise stop[1]
        group = pending.pop()
        product, sources, error = group.build(lambda value, g=group: _resolve_image(value, base, g.pid))
        yield IngestRecord(product, sources[0] if sources else None, sources, error)
    if stop is not None:
        raise stop[1]


def _resolve_image(value: str, base: Path, pid: str) -> str | None:
    if value.lower().startswith(("http://", "https://")):
        return value
    if value:
        p = Path(value)
        return str(p if p.is_absolute() else (base / p))
    # No image column (Kaggle styles.csv): look for images/<id>.jpg beside the CSV.
    for folder in (base / "images", base):
        for ext in (".jpg", ".jpeg", ".png", ".webp"):
            candidate = folder / f"{pid}{ext}"
            if candidate.is_file():
                return str(candidate)
    return None


def read_folder(path: str | Path) -> Iterator[IngestRecord]:
    """Yield one record per product under ``path`` (recursive, sorted): one per picture, or per numbered
    set (``ID.jpg``, ``ID_2.jpg``), or per product folder (``ABC123/front.jpg``, ``ABC123/back.jpg``); see
    :mod:`lookalike.source_folders` for the rules.

    The id is the path relative to the folder without its extension (``shoes/123``), or the product
    folder's path; a product in a sub-folder gets the top sub-folder's name as its category.
    """
    root = Path(path)
    if not root.is_dir():
        raise SourceError(f"image folder not found: {root}")
    found = False
    for item in folder_products(root):
        found = True
        try:
            validate_product_id(item.id)
        except InvalidProductError as exc:
            raise SourceError(f"{item.pictures[0]}: {exc} (rename the file)") from exc
        sources = [str(f.resolve()) for f in item.pictures]
        product = Product(id=item.id, title=item.title, category=item.category, images=sources)
        yield IngestRecord(product, sources[0], sources)
    for entry, reason in unreadable_entries(root, IMAGE_EXTENSIONS):  # FIFOs, link loops: reported, not dropped
        with contextlib.suppress(InvalidProductError):
            yield IngestRecord(Product(id=entry.relative_to(root).with_suffix("").as_posix()), None, error=reason)
            found = True
    if not found:
        raise SourceError(f"no image files in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
