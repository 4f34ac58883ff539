"""A catalogue's manifest: its format, the lookalike version that wrote it, the extractor and the index.

Below the catalogue and its backends: :mod:`lookalike.catalog` and :mod:`lookalike.backends.milvus`
both read and write manifests through these helpers, and neither has to import the other for them.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from lookalike import __version__
from lookalike.errors import CatalogError, LookalikeError, ModelMismatchError
from lookalike.extractors import Extractor, extractor_spec
from lookalike.extractors.identity import file_sha256, model_entry, weights_file

__all__ = ["FORMAT_VERSION", "MANIFEST", "check_extractor", "check_manifest", "embedded_root", "new_manifest"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def embedded_root(path: Path) -> Path | None:
    """``path`` when it is an embedded catalogue's directory (its manifest is a file there); None for a Milvus
    catalogue, whose manifest lives in the collection."""
    return path if (path / MANIFEST).is_file() else None


def new_manifest(ext: Extractor, index: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a new catalogue: format, versions, the extractor and the index."""
    return {
        "format": FORMAT_VERSION,
        "lookalike_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extractor": model_entry(ext),
        "index": index,
    }


def check_manifest(manifest: dict[str, Any], where: str) -> None:
    """Refuse a manifest written by a newer lookalike (a format this one does not know)."""
    if manifest.get("format", 0) > FORMAT_VERSION:
        raise CatalogError(f"{where} was written by a newer lookalike (format {manifest['format']})")


def check_extractor(manifest: dict[str, Any], extractor: str | Extractor | None, where: str) -> Extractor | None:
    """Refuse an extractor other than the catalogue's (by name, and for a ready ONNX object by the SHA-256 of its
    weights); return it when it is a ready object."""
    if extractor is None:
        return None
    name = manifest["extractor"]["name"]
    asked = extractor.name if isinstance(extractor, Extractor) else extractor
    if asked != name and not isinstance(extractor, Extractor):
        with contextlib.suppress(LookalikeError):
            asked = extractor_spec(asked).name  # e.g. "clip:./dir" -> "clip:/abs/dir"
    if asked != name:
        raise ModelMismatchError(
            f"catalogue {where} was built with extractor {name!r}, not {asked!r}; "
            "use a new catalogue for another extractor"
        )
    if isinstance(extractor, Extractor):
        sha, path = manifest["extractor"].get("sha256"), weights_file(extractor)
        if sha and path is not None and file_sha256(path) != sha:
            raise ModelMismatchError(
                f"catalogue {where} was built with {name!r} weights sha256 {str(sha)[:12]}…, not those of {path}"
            )
        return extractor
    return None
