"""A product's pictures one at a time: add one to an existing product, remove one, find one's file.

The ingest writes a product with all its pictures at once (:mod:`lookalike.catalog.ingest`); these are the
single-picture changes the REST API and the Python API offer. Each rewrites the product's pictures in one
backend write (its other pictures' vectors are kept, not re-computed) while holding the picture lock, so a
picture file is removed only when no product uses it any more.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from lookalike.backends.base import MAX_PICTURES, StoredPicture, UpsertItem
from lookalike.catalog.ingest import IngestHost
from lookalike.catalog.prepare import PreparedPicture, upload_name
from lookalike.errors import CatalogError, InvalidQueryError, ProductNotFoundError
from lookalike.imaging import image_format, open_image_bytes
from lookalike.product import Product

__all__ = ["add_picture", "picture_path", "remove_picture", "upload_name"]


def _stored(host: IngestHost, product_id: str) -> tuple[Product, list[StoredPicture], np.ndarray]:
    product = host.backend.get(product_id)
    if product is None:
        raise ProductNotFoundError(f"no product with id {product_id!r}")
    state = host.backend.states([product_id])[product_id]
    pictures = list(state.all_pictures())
    vecs = host.backend.picture_vectors_of([product_id]).get(product_id)  # type: ignore[attr-defined]
    if vecs is None or len(vecs) != len(pictures):
        raise CatalogError(f"product {product_id!r}: its stored pictures and vectors disagree; run `lookalike check`")
    return product, pictures, np.asarray(vecs, dtype=np.float32)


def _names(pictures: list[StoredPicture]) -> list[StoredPicture]:
    named = [p.image or upload_name(p.image_sha or "") for p in pictures]
    return [StoredPicture(n, p.image_sha, p.image_file) for n, p in zip(named, pictures, strict=True)]


def add_picture(host: IngestHost, product_id: str, data: bytes, name: str | None = None) -> int:
    """Add the picture ``data`` to a product (after its others); returns its position (an existing one when
    the product has this very picture already)."""
    sha = hashlib.sha256(data).hexdigest()
    with host.pictures.locked():
        product, pictures, vecs = _stored(host, product_id)
        for i, p in enumerate(pictures):
            if p.image_sha == sha:
                return i
        if len(pictures) >= MAX_PICTURES:
            raise InvalidQueryError(f"product {product_id!r} has {MAX_PICTURES} pictures already, the most it keeps")
        img = open_image_bytes(data, host.decode_limits)
        new = PreparedPicture(name, None, sha, data, image_format(data)[0], img)
        rel = host.pictures.save(new, host.decode_limits)
        vec = host.extractor.embed([img])[0]
        kept = [*_names(pictures), StoredPicture(name or upload_name(sha), sha, rel)]
        _write(host, product, kept, np.vstack([vecs, vec[None, :]]))
    return len(kept) - 1


def remove_picture(host: IngestHost, product_id: str, position: int) -> None:
    """Remove a product's picture at ``position`` (the next one becomes the main picture when it is 0); a
    product keeps at least one picture (delete the product instead)."""
    with host.pictures.locked():
        product, pictures, vecs = _stored(host, product_id)
        if not 0 <= position < len(pictures):
            raise ProductNotFoundError(f"product {product_id!r} has no picture {position} (it has {len(pictures)})")
        if len(pictures) == 1:
            raise InvalidQueryError(f"product {product_id!r} has only this picture: delete the product instead")
        gone = pictures.pop(position)
        _write(host, product, _names(pictures), np.delete(vecs, position, axis=0))
        if gone.image_file:
            host.pictures.remove_unused([gone.image_file], host.backend.image_file_in_use)


def _write(host: IngestHost, product: Product, pictures: list[StoredPicture], vecs: np.ndarray) -> None:
    images = [p.image for p in pictures if p.image]
    updated = Product(**{**product.to_dict(), "images": images, "image": None})
    main = pictures[0]
    host.backend.upsert([UpsertItem(updated, vecs, main.image_sha, main.image_file, pictures)])


def picture_path(host: IngestHost, product_id: str, position: int) -> Path:
    """The stored file of a product's picture at ``position`` (always inside the picture folder)."""
    rel = host.backend.picture_file_of(product_id, position)  # type: ignore[attr-defined]
    if rel is None:
        if host.backend.get(product_id) is None:
            raise ProductNotFoundError(f"no product with id {product_id!r}")
        raise ProductNotFoundError(f"product {product_id!r} has no picture {position}")
    root = host.pictures.root.resolve()
    target = (host.pictures.root / rel).resolve()
    if root not in target.parents or not target.is_file():
        raise CatalogError(f"stored picture {position} of {product_id!r} is missing")
    return target
