"""What a model *is*, independent of where it lies: its registered name and the SHA-256 of its weights file.

A catalogue manifest records a model by :func:`model_entry` (name, dimension, preprocessing, weights file
name and content hash), never by an absolute path, so a catalogue opens on any machine where the same
weights are installed. :func:`find_by_sha256` finds the registered model whose file has a given hash
(a catalogue built with ``lookalike-fashion`` before the packaged default changed finds the same weights
under ``lookalike-fashion-fp32``). :func:`model_family` strips the ``-fp32`` / ``-int8`` variant suffixes:
variants of one model share an embedding space (the text encoder is trained against the family).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from lookalike.config import BUNDLED_MODEL_DIR

__all__ = [
    "VARIANT_SUFFIXES",
    "file_sha256",
    "find_by_sha256",
    "is_packaged",
    "model_entry",
    "model_family",
    "spec_weights",
    "weights_file",
]

VARIANT_SUFFIXES = ("-int8", "-fp32")
_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def model_family(name: str) -> str:
    """``lookalike-fashion-fp32-int8`` -> ``lookalike-fashion``: the name without variant suffixes."""
    changed = True
    while changed:
        changed = False
        for suffix in VARIANT_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file (hex), remembered per path, size and modification time (a 20 MB model: ~30 ms once)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        known = _HASHES.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASHES[key] = digest
    return digest


def is_packaged(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is one of the model files that ship inside the lookalike package."""
    try:
        return Path(path).resolve().parent == BUNDLED_MODEL_DIR.resolve()
    except OSError:
        return False


def weights_file(extractor: Any) -> Path | None:
    """The ONNX file an extractor object runs, or None (hub checkpoints, histograms, stand-ins)."""
    path = getattr(extractor, "path", None)
    if path is None:
        return None
    p = Path(path)
    return p if p.suffix == ".onnx" and p.is_file() else None


def spec_weights(name: str) -> Path | None:
    """The ONNX file ``create_extractor(name)`` would load now, without loading it (None: not an ONNX model,
    not registered, or its file is missing)."""
    from lookalike.errors import LookalikeError
    from lookalike.extractors.builtin import find_model_file
    from lookalike.extractors.registry import extractor_spec

    try:
        spec = extractor_spec(name)
    except LookalikeError:
        return None
    path = spec.extra.get("path")
    found = Path(path) if path else (find_model_file(f"{name}.onnx") if spec.kind == "builtin" else None)
    return found if found is not None and found.is_file() else None


def find_by_sha256(sha256: str, prefer: str | None = None) -> str | None:
    """The registered model whose weights file has this hash (``prefer`` is tried first), or None."""
    from lookalike.extractors.registry import list_extractors

    names = list_extractors()
    if prefer in names:
        names = [prefer, *(n for n in names if n != prefer)]
    for name in names:
        path = spec_weights(name)
        if path is not None and file_sha256(path) == sha256:
            return name
    return None


def model_entry(extractor: Any) -> dict[str, Any]:
    """What a catalogue manifest records of ``extractor``: its ``describe()`` without any absolute path, plus
    the weights file's name and SHA-256 and whether it ships with the package (for an ONNX model)."""
    entry = dict(extractor.describe())
    entry.pop("path", None)
    path = weights_file(extractor)
    if path is not None:
        entry["file"] = path.name
        entry["sha256"] = file_sha256(path)
        entry["packaged"] = is_packaged(path)
    return entry
