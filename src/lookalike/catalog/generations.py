"""Generations of an embedded catalogue: the same products under another model, side by side, one serving.

A catalogue directory holds generation 0 at its top (``manifest.json``, ``products.db``, ``index.<seq>.faiss``,
``models/``). ``lookalike reindex`` builds generation *n* in ``generations/<n>/`` (its own manifest, store, index
and model copy); the pictures in ``images/`` are shared by all of them. ``generation.json`` (the pointer, replaced
atomically) names the generation that serves and the one before it; without it generation 0 serves.

:func:`locate` is what :meth:`Catalog.open <lookalike.catalog.Catalog.open>` follows. A catalogue opened through
its directory gets a write guard (:attr:`ProductStore.write_guard <lookalike.store.ProductStore>`): every write
transaction, once it holds SQLite's write lock, checks that its generation still serves, so a write that reaches
a generation after the switch fails with :class:`~lookalike.errors.CatalogSwitchedError` instead of being lost
(the switch holds the old store's write lock while it copies the last changes: :mod:`lookalike.catalog.reindex`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lookalike.backends.embedded import STORE_FILE, fsync_dir
from lookalike.catalog.ingest_lock import try_flock
from lookalike.errors import (
    CatalogDamagedError,
    CatalogError,
    CatalogNotFoundError,
    CatalogSwitchedError,
)
from lookalike.fsutil import atomic_write
from lookalike.manifest import MANIFEST

__all__ = [
    "FOLDER",
    "POINTER",
    "Pointer",
    "generation_dir",
    "generations",
    "guard_writes",
    "locate",
    "new_generation",
    "operation_lock",
    "read_manifest",
    "read_pointer",
    "remove_generation",
    "store_meta",
    "write_pointer",
]

POINTER = "generation.json"
FOLDER = "generations"
_LOCK = ".lock"


@dataclass(frozen=True)
class Pointer:
    """What ``generation.json`` says: the generation that ``serving``, the one before it (``previous``: what
    ``reindex --rollback`` returns to) and the generations ``gc`` has ``removed``."""

    serving: int = 0
    previous: int | None = None
    removed: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"serving": self.serving, "previous": self.previous, "removed": list(self.removed)}


def generation_dir(root: Path, n: int) -> Path:
    """The folder of generation ``n`` (0: the catalogue directory itself)."""
    return root if n == 0 else root / FOLDER / str(n)


def read_pointer(root: Path) -> Pointer:
    """The catalogue's pointer (generation 0 serving when there is none)."""
    path = root / POINTER
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Pointer()
    except (OSError, ValueError) as exc:
        raise CatalogDamagedError(f"{path} cannot be read ({exc}); run lookalike check") from exc
    try:
        previous = data.get("previous")
        return Pointer(
            int(data["serving"]), None if previous is None else int(previous), tuple(int(r) for r in data["removed"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogDamagedError(f"{path} is damaged ({exc!r}); run lookalike check") from exc


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Replace the pointer atomically and durably (temp file, fsync, rename, folder fsync): a reader or a crash
    sees the old generation or the new one."""
    atomic_write(root / POINTER, (json.dumps(pointer.to_dict()) + "\n").encode())
    fsync_dir(root)


def pointer_stamp(root: Path) -> tuple[int, int, int] | None:
    """A cheap fingerprint of the pointer file (inode, mtime, size; None when there is none): it changes with
    every switch (each is a new file renamed into place)."""
    try:
        st = os.stat(root / POINTER)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _is_generation_dir(path: Path) -> bool:
    return path.name.isdigit() and path.parent.name == FOLDER and (path.parent.parent / MANIFEST).is_file()


def locate(path: Path, generation: int | None = None) -> tuple[Path, Path | None, Path, int]:
    """Where the catalogue at ``path`` lives: (the folder of the generation to open, the shared picture folder or
    None for the folder's own, the catalogue directory, the generation's number). ``path`` may be the catalogue
    directory (the serving generation, or ``generation``) or a generation's folder."""
    if generation is None and _is_generation_dir(path):
        root = path.parent.parent
        return path, root / "images", root, int(path.name)
    n = read_pointer(path).serving if generation is None else generation
    data = generation_dir(path, n)
    if n and not (data / MANIFEST).is_file():
        raise CatalogDamagedError(f"generation {n} of {path} is missing ({data}); run lookalike check")
    return data, (path / "images" if n else None), path, n


def check_serving(root: Path, n: int) -> None:
    """Raise :class:`CatalogSwitchedError` unless generation ``n`` of ``root`` serves (the write guard)."""
    serving = read_pointer(root).serving
    if serving != n:
        raise CatalogSwitchedError(
            f"the catalogue {root} switched from generation {n} to generation {serving} (lookalike reindex); "
            "nothing was written: open it again and retry"
        )


def guard_writes(backend: Any, root: Path, n: int) -> None:
    """Make every write of ``backend`` (an embedded store) check that generation ``n`` still serves."""
    if hasattr(backend, "write_guard"):
        backend.write_guard = partial(check_serving, root, n)


def generations(root: Path) -> list[int]:
    """The generations present in ``root``, in order."""
    removed = set(read_pointer(root).removed)
    found = [0] if (root / STORE_FILE).exists() and 0 not in removed else []
    folder = root / FOLDER
    if folder.is_dir():
        found += sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())
    return found


def new_generation(root: Path) -> int:
    """Make the folder of a new generation (the next number never used) and return its number."""
    pointer = read_pointer(root)
    folder = root / FOLDER
    used = {0, pointer.serving, *pointer.removed, *([pointer.previous] if pointer.previous is not None else [])}
    if folder.is_dir():
        used |= {int(p.name) for p in folder.iterdir() if p.name.isdigit()}
    n = max(used) + 1
    (folder / str(n)).mkdir(parents=True)
    fsync_dir(folder)
    return n


def read_manifest(root: Path, n: int) -> dict[str, Any]:
    """Generation ``n``'s manifest."""
    path = generation_dir(root, n) / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path} cannot be read: {exc}") from exc


@contextlib.contextmanager
def operation_lock(root: Path, what: str) -> Iterator[None]:
    """One reindex, switch, rollback or gc at a time per catalogue (``flock`` on ``generations/.lock``, never
    waited for: :class:`CatalogBusyError` at once; the kernel drops it when its holder dies)."""
    if not (root / MANIFEST).is_file():
        raise CatalogNotFoundError(f"no lookalike catalogue at {root} (missing {MANIFEST})")
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    with try_flock(
        folder / _LOCK, f"another reindex, rollback or gc is running on {root}; {what} when it has finished"
    ):
        yield


def store_meta(db: Path, values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Read (and with ``values``, first write) keys of a store's ``meta`` table: what a generation knows of the
    one it was last brought in step with (``synced_from``, ``synced_seq``)."""
    conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
    try:
        if values:
            conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
            )
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    finally:
        conn.close()


def remove_generation(root: Path, n: int) -> None:
    """Delete generation ``n``'s files (not the shared pictures). Generation 0 keeps its ``manifest.json``: it
    marks the folder as a catalogue."""
    if n:
        shutil.rmtree(generation_dir(root, n))
        return
    for p in root.iterdir():
        if p.name.startswith(STORE_FILE) or (p.name.startswith("index.") and p.name.endswith(".faiss")):
            p.unlink()
    shutil.rmtree(root / "models", ignore_errors=True)
