"""The catalogue's model: kept with the catalogue when it is not packaged, found again by name and content hash.

A catalogue is one directory. Its manifest names the model by registered name and the SHA-256 of its
weights (:func:`lookalike.extractors.identity.model_entry`). A model that ships with lookalike is found in
any installation by that; any other ONNX model (``lookalike models add``, ``models quantize``, an ``.onnx``
path) is copied into the catalogue at creation (:func:`keep_copy`: ``models/<file>``), so the directory
opens on another machine or for another user without their model folder.

:func:`load_extractor` opens the model a manifest names, in this order: the catalogue's own copy; the
registered model of that name when its weights have the recorded hash; any registered model whose weights
have that hash (the packaged default changed name); otherwise a clear error naming the missing file and
how to supply it. Never a model with other weights: its vectors would not match the catalogue's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lookalike.config import user_model_dir
from lookalike.errors import ExtractorNotFoundError, LookalikeError, ModelMismatchError
from lookalike.extractors import Extractor, PreprocessCfg, create_extractor
from lookalike.extractors.identity import file_sha256, find_by_sha256, spec_weights, weights_file
from lookalike.fsutil import atomic_copy

__all__ = ["COPY_DIR", "keep_copy", "load_extractor"]

COPY_DIR = "models"
# Manifests written before models were recorded by hash: the packaged default was then the FP32 model.
_LEGACY_PACKAGED = {"lookalike-fashion.onnx": "lookalike-fashion-fp32"}


def keep_copy(root: Path, extractor: Extractor, entry: dict[str, Any]) -> bool:
    """Copy a model that is not packaged into ``root/models/`` (fsynced, atomic) and note it in ``entry``;
    whether it did."""
    path = weights_file(extractor)
    if path is None or entry.get("packaged", True):
        return False
    folder = root / COPY_DIR
    folder.mkdir(exist_ok=True)
    atomic_copy(path, folder / path.name)
    entry["copy"] = f"{COPY_DIR}/{path.name}"
    return True


def _own_copy(root: Path | None, entry: dict[str, Any], where: str) -> Extractor | None:
    rel = entry.get("copy")
    if root is None or not rel:
        return None
    path = root / str(rel)
    if root.resolve() not in path.resolve().parents or not path.is_file():
        return None
    if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
        raise ModelMismatchError(f"{where}: the model copy {path} is damaged (its SHA-256 is not the recorded one)")
    from lookalike.extractors.onnx import OnnxExtractor

    return OnnxExtractor(str(entry["name"]), path, PreprocessCfg.from_dict(entry.get("preprocess") or {}))


def _missing(entry: dict[str, Any], where: str, root: Path | None) -> ExtractorNotFoundError:
    name = entry["name"]
    file = entry.get("file") or f"{name}.onnx"
    sha = str(entry.get("sha256", ""))[:12]
    place = f"{root / COPY_DIR / file}" if root is not None else f"a model folder as {file}"
    return ExtractorNotFoundError(
        f"catalogue {where} was built with model {name!r} ({file}"
        + (f", sha256 {sha}…" if sha else "")
        + f"), which is not installed here. Copy that file to {place}, or register it with "
        f"`lookalike models add {name} PATH/{file}`"
    )


def load_extractor(entry: dict[str, Any], root: Path | None, where: str) -> Extractor:
    """The extractor a manifest's ``extractor`` entry names (see the module docstring); ``root``: the
    catalogue directory (None for a Milvus catalogue)."""
    own = _own_copy(root, entry, where)
    if own is not None:
        return own
    name = str(entry["name"])
    sha = entry.get("sha256")
    if not sha:  # an older manifest: the name alone, or the packaged file it pointed at
        old = Path(str(entry.get("path", "")))
        legacy = _LEGACY_PACKAGED.get(old.name) if old.name == f"{name}.onnx" else None
        if legacy is not None and old.parent != user_model_dir() and spec_weights(legacy):
            return create_extractor(legacy)
        try:
            return create_extractor(name)
        except ExtractorNotFoundError as exc:
            raise _missing(entry, where, root) from exc
    current = spec_weights(name)
    if current is not None and file_sha256(current) == sha:
        return create_extractor(name)
    other = find_by_sha256(str(sha))
    if other is not None:
        return create_extractor(other)
    if current is None:
        try:  # a registered model that is not an ONNX file (a hub checkpoint) cannot be checked by hash
            if weights_file(ext := create_extractor(name)) is None:
                return ext
        except LookalikeError:
            pass
        raise _missing(entry, where, root)
    raise ModelMismatchError(
        f"catalogue {where} was built with model {name!r} whose weights had sha256 {str(sha)[:12]}…; the installed "
        f"{name!r} has other weights ({file_sha256(current)[:12]}…), and its vectors would not match. Install the "
        f"lookalike version that built it, put the original {entry.get('file') or name + '.onnx'} in "
        f"{(root / COPY_DIR) if root is not None else 'a model folder'}, or ingest into a new catalogue"
    )
