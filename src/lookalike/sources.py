"""Ingest sources: a folder of images or a CSV of products, read into :class:`IngestRecord` rows.

CSV columns are mapped by name. Defaults cover common names, including the Kaggle fashion
``labels.csv``/``styles.csv`` columns (id, articleType, baseColour, productDisplayName, ...). Columns that
map to no field are kept in the product's ``extra``. Image paths are resolved relative to the CSV's
folder; http(s) URLs are fetched at ingest.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.errors import InvalidProductError, SourceError
from lookalike.product import Product, validate_product_id

__all__ = ["DEFAULT_COLUMNS", "IMAGE_EXTENSIONS", "IngestRecord", "read_csv", "read_folder"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)

# field -> candidate column names, compared case-insensitively, ignoring '_', '-' and spaces.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "product_id", "productid", "sku", "item_id", "style_id"),
    "title": ("title", "name", "product_name", "productdisplayname", "display_name", "description"),
    "brand": ("brand", "brand_name", "manufacturer"),
    "category": ("category", "mastercategory", "master_category", "department"),
    "subcategory": ("subcategory", "sub_category"),
    "article_type": ("article_type", "articletype", "type", "product_type"),
    "colour": ("colour", "color", "basecolour", "base_colour", "basecolor"),
    "gender": ("gender", "sex"),
    "price": ("price", "sale_price", "list_price"),
    "image": ("image", "image_path", "image_url", "img", "imageurl", "path", "filename", "file", "link_image"),
    "url": ("url", "product_url", "link", "page_url"),
}


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


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


def resolve_columns(header: list[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map product fields to CSV columns: explicit ``overrides`` first, then the defaults."""
    by_norm = {_norm(h): h for h in header}
    mapping: dict[str, str] = {}
    for fld, column in (overrides or {}).items():
        if fld not in DEFAULT_COLUMNS:
            raise SourceError(f"unknown field {fld!r} in column mapping (fields: {', '.join(DEFAULT_COLUMNS)})")
        if column not in header:
            raise SourceError(f"column {column!r} (mapped to {fld}) is not in the CSV header")
        mapping[fld] = column
    used = set(mapping.values())
    for fld, candidates in DEFAULT_COLUMNS.items():
        if fld in mapping:
            continue
        for cand in candidates:
            col = by_norm.get(_norm(cand))
            if col is not None and col not in used:
                mapping[fld] = col
                used.add(col)
                break
    return mapping


def _parse_price(value: str, line: int) -> float | None:
    text = value.strip().replace(",", "")
    text = re.sub(r"^(?:[$€£¥₹]|[A-Z]{3}\s)\s*|\s*(?:[$€£¥₹]|\s[A-Z]{3})$", "", text)  # currency
    if not text:
        return None
    try:
        price = float(text)
    except ValueError as exc:
        raise SourceError(f"line {line}: price {value!r} is not a number") from exc
    if not math.isfinite(price):
        raise SourceError(f"line {line}: price {value!r} is not a finite number")
    return price


def read_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> Iterator[IngestRecord]:
    """Yield one record per CSV row. Rows without an id are an error; rows without an image get ``None``."""
    csv_path = Path(path)
    if not csv_path.is_file():
        raise SourceError(f"CSV file not found: {csv_path}")
    base = csv_path.resolve().parent
    try:
        fh = csv_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        if not header:
            raise SourceError(f"{csv_path} is empty or has no header row")
        mapping = resolve_columns(header, columns)
        if "id" not in mapping:
            raise SourceError(
                f"{csv_path}: no id column (looked for {', '.join(DEFAULT_COLUMNS['id'])}); "
                "map one with --map id=COLUMN"
            )
        mapped_cols = set(mapping.values())
        seen: set[str] = set()
        try:
            for line, row in enumerate(reader, start=2):
                pid = (row.get(mapping["id"]) or "").strip()
                try:
                    validate_product_id(pid)
                except InvalidProductError as exc:
                    raise SourceError(f"{csv_path} line {line}: {exc}") from exc
                if pid in seen:
                    raise SourceError(f"{csv_path} line {line}: duplicate product id {pid!r}")
                seen.add(pid)
                fields: dict[str, object] = {}
                for fld, col in mapping.items():
                    if fld in ("id", "image"):
                        continue
                    value = (row.get(col) or "").strip()
                    if fld == "price":
                        fields[fld] = _parse_price(value, line)
                    else:
                        fields[fld] = value or None
                extra = {k: v for k, v in row.items() if k is not None and k not in mapped_cols and v not in (None, "")}
                image_value = (row.get(mapping["image"]) or "").strip() if "image" in mapping else ""
                source = _resolve_image(image_value, base, pid)
                try:
                    product = Product(id=pid, extra=extra, **fields)  # type: ignore[arg-type]
                except InvalidProductError as exc:
                    raise SourceError(f"{csv_path} line {line}: {exc}") from exc
                product.image = source
                yield IngestRecord(product, source)
        except csv.Error as exc:
            raise SourceError(f"{csv_path}: malformed CSV ({exc})") from exc


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
    """Yield one record per image file under ``path`` (recursive, sorted).

    The id is the path relative to the folder without its extension (``shoes/123``); an image in a
    sub-folder gets that folder's name as its category.
    """
    root = Path(path)
    if not root.is_dir():
        raise SourceError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise SourceError(f"no image files in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    for f in files:
        rel = f.relative_to(root)
        pid = rel.with_suffix("").as_posix()
        try:
            validate_product_id(pid)
        except InvalidProductError as exc:
            raise SourceError(f"{f}: {exc} (rename the file)") from exc
        category = rel.parts[0] if len(rel.parts) > 1 else None
        product = Product(id=pid, title=f.stem, category=category, image=str(f.resolve()))
        yield IngestRecord(product, str(f.resolve()))
