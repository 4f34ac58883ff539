"""Where a catalogue lives: creating and opening one on the embedded backend or on Milvus.

An embedded catalogue is a directory: ``manifest.json`` first (a crash before it leaves an empty
folder), then ``images/``; the SQLite store and the FAISS index come with
:class:`~lookalike.backends.embedded.EmbeddedBackend`. A Milvus catalogue is made and opened by
:mod:`lookalike.backends.milvus`, imported only when asked for. The backends never import the
catalogue: they get the class to build (``cls``) from here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.embedded import EmbeddedBackend, fsync_dir
from lookalike.catalog.generations import guard_writes, locate
from lookalike.catalog.model_files import keep_copy
from lookalike.errors import CatalogError, CatalogExistsError, CatalogNotFoundError, LookalikeError, ModelLoadError
from lookalike.extractors import DEFAULT_EXTRACTOR, Extractor, create_extractor
from lookalike.extractors.quantize import preferred_extractor
from lookalike.fsutil import atomic_write
from lookalike.index import IndexPolicy
from lookalike.manifest import MANIFEST, check_extractor, check_manifest, new_manifest

__all__ = [
    "BACKENDS",
    "create_catalog",
    "embedded_backend",
    "open_catalog",
    "probe_extractor",
    "record_index",
    "write_manifest",
]

BACKENDS = ("embedded", "milvus")


def _unknown(backend: str) -> CatalogError:
    return CatalogError(f"unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of the embedded catalogue at ``root`` (atomically)."""
    atomic_write(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def create_catalog(
    cls: Any,
    path: str | os.PathLike[str],
    extractor: str | Extractor | None,
    exist_ok: bool,
    backend: str,
    uri: str | None,
    token: str | None,
    **kwargs: Any,
) -> Any:
    """:meth:`lookalike.catalog.Catalog.create` (which documents it): a new ``cls`` instance."""
    if extractor is None and not (exist_ok and backend == "embedded" and (Path(path) / MANIFEST).exists()):
        extractor = preferred_extractor(DEFAULT_EXTRACTOR)
    if backend == "milvus":
        from lookalike.backends.milvus import create_milvus_catalog

        return create_milvus_catalog(cls, str(path), extractor, exist_ok, uri, token, **kwargs)
    if backend != "embedded":
        raise _unknown(backend)
    root = Path(path)
    if (root / MANIFEST).exists():
        if not exist_ok:
            raise CatalogExistsError(f"a catalogue already exists at {root}")
        return cls.open(root, extractor=extractor, **kwargs)
    if root.exists() and not root.is_dir():
        raise CatalogError(f"{root} exists and is not a directory")
    if root.is_dir() and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise CatalogError(f"{root} is a non-empty directory that is not a lookalike catalogue")
    ext = extractor if isinstance(extractor, Extractor) else create_extractor(extractor or DEFAULT_EXTRACTOR)
    probe_extractor(ext)  # a model that cannot embed fails here, before there is a directory to leave behind
    made = _missing_parents(root)
    kept = {p.name for p in root.iterdir()} if root.is_dir() else set()
    root.mkdir(parents=True, exist_ok=True)
    try:
        policy = kwargs.get("index_policy") or IndexPolicy()
        index = {"backend": "embedded", "type": "faiss-flat-ip", "metric": "cosine", "policy": policy.to_dict()}
        manifest = new_manifest(ext, index)
        write_manifest(root, manifest)
        fsync_dir(root)  # the manifest comes first: a crash before it leaves an empty folder
        if keep_copy(root, ext, manifest["extractor"]):  # a model that does not ship with lookalike travels along
            write_manifest(root, manifest)  # (a crash before this: the model is found by name and hash instead)
        (root / "images").mkdir(exist_ok=True)
        return cls(root, manifest, extractor=ext, **kwargs)
    except BaseException:
        _remove_new(root, made, kept)
        raise


def probe_extractor(ext: Extractor) -> None:
    """Embed one grey picture with ``ext``: :class:`ModelLoadError` unless it gives one ``ext.dim``-wide
    vector (a model that fails here would fail on the first ingest batch)."""
    from PIL import Image

    if not getattr(ext, "can_embed", True):  # a stand-in that only describes a model (a migration's)
        return
    size = getattr(getattr(ext, "preprocess_cfg", None), "size", 224)
    try:
        vec = np.asarray(ext.embed([Image.new("RGB", (size, size), (128, 128, 128))]))
    except LookalikeError:
        raise
    except Exception as exc:  # onnxruntime, torch and friends raise their own errors
        raise ModelLoadError(f"extractor {ext.name!r} cannot embed a picture: {exc}") from exc
    if vec.shape != (1, ext.dim):
        raise ModelLoadError(f"extractor {ext.name!r} gives embeddings of shape {vec.shape}, not (1, {ext.dim})")


def _missing_parents(root: Path) -> list[Path]:
    """``root`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for p in (root, *root.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


def _remove_new(root: Path, made: list[Path], kept: set[str]) -> None:
    """Undo a catalogue creation that failed: the folders it made, or (in a folder that was there) what it
    wrote there, all but the entries ``kept``."""
    if made and made[0] == root:
        shutil.rmtree(root, ignore_errors=True)
    else:
        for entry in root.iterdir():
            if entry.name not in kept:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    for p in made[1:]:
        try:
            p.rmdir()
        except OSError:
            break


def open_catalog(
    cls: Any,
    path: str | os.PathLike[str],
    extractor: str | Extractor | None,
    backend: str,
    uri: str | None,
    token: str | None,
    **kwargs: Any,
) -> Any:
    """:meth:`lookalike.catalog.Catalog.open` (which documents it): a ``cls`` instance. An embedded catalogue
    opens at its serving generation, or at ``generation=N`` (:mod:`lookalike.catalog.generations`)."""
    generation = kwargs.pop("generation", None)
    if backend == "milvus":
        from lookalike.backends.milvus import open_milvus_catalog

        return open_milvus_catalog(cls, str(path), extractor, uri, token, **kwargs)
    if backend != "embedded":
        raise _unknown(backend)
    root, images, home, n = locate(Path(path), generation)  # the serving generation; the shared pictures
    if images is not None:
        kwargs.setdefault("images_dir", images)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise CatalogNotFoundError(f"no lookalike catalogue at {root} (missing {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        name = manifest["extractor"]["name"]
        int(manifest["extractor"]["dim"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{manifest_path} is damaged: {exc}") from exc
    check_manifest(manifest, str(root))
    ext_obj = check_extractor(manifest, extractor, str(root))
    del name
    catalog = cls(root, manifest, extractor=ext_obj, **kwargs)
    if generation is None and home == Path(path):  # opened through the catalogue: writes while it serves
        guard_writes(catalog.backend, home, n)
    return catalog


def embedded_backend(path: Path, manifest: dict[str, Any], policy: IndexPolicy | None) -> EmbeddedBackend:
    """The backend of the embedded catalogue at ``path``; its index follows ``policy`` (default: the
    manifest's)."""
    policy = policy or IndexPolicy.from_dict(manifest.get("index", {}).get("policy"))
    return EmbeddedBackend(path, int(manifest["extractor"]["dim"]), policy)


def record_index(path: Path, manifest: dict[str, Any], backend: Any) -> None:
    """Keep the manifest's ``index`` entry (type, IVF shape) in step with the embedded index; the
    manifest is updated in place and on disk. Nothing for another backend or without a manifest file."""
    if not isinstance(backend, EmbeddedBackend) or not (path / MANIFEST).is_file():
        return
    desc = backend.describe()
    entry = dict(manifest.get("index", {}))
    wanted = {**entry, "type": desc["index"], "params": desc.get("index_params", {})}
    wanted.setdefault("policy", backend.policy.to_dict())
    if wanted == entry:
        return
    manifest["index"] = wanted
    write_manifest(path, manifest)
