"""A consistent copy of a catalogue while it serves or ingests: ``lookalike backup CAT DEST``.

The copy is of the serving generation, as a plain catalogue directory that opens and searches anywhere:

* ``products.db`` by SQLite's online backup API (:meth:`sqlite3.Connection.backup`: one snapshot, while writers
  go on), taken while holding the picture lock (:meth:`PictureStore.locked
  <lookalike.catalog.pictures.PictureStore.locked>`), so no picture the snapshot names can be deleted before it
  is linked: the pictures are hard-linked into a staging folder beside ``images/`` under the lock (or, where links
  cannot be made, copied under it), then copied out without it;
* the newest index checkpoint not ahead of the snapshot, which the copy brings up to the snapshot when it is
  opened and checkpointed once, here (a copy without one rebuilds it);
* ``models/`` (a model that does not ship with lookalike) and the manifest.

Everything is written under ``.<DEST>.partial-<random>`` beside DEST, synced, and renamed to DEST at the end: a
crash or a full disk leaves no DEST (and the catalogue untouched). Restore: serve the copy, or move it in place of
the catalogue (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.backends.embedded import STORE_FILE, fsync_dir
from lookalike.catalog.facade import Catalog
from lookalike.catalog.generations import locate
from lookalike.catalog.pictures import PictureStore
from lookalike.errors import CatalogError, CatalogExistsError, CatalogNotFoundError
from lookalike.fsutil import atomic_write, full_disk_error, is_disk_full
from lookalike.manifest import MANIFEST

__all__ = ["BackupReport", "backup"]

_INDEX = re.compile(r"^index\.(\d+)\.faiss$")
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


@dataclass
class BackupReport:
    """What :func:`backup` copied."""

    dest: Path
    generation: int
    seq: int
    products: int
    pictures: int
    bytes: int
    seconds: float
    problems: list[str] = field(default_factory=list)  # what the copy's own check found (the source's damage)


def _snapshot_store(source: Path, target: Path) -> int:
    """SQLite's online backup of ``source`` into ``target``; the snapshot's change sequence."""
    src = sqlite3.connect(source, timeout=30.0)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot, writers not blocked (WAL)
            return int(dst.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()


def _picture_files(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT DISTINCT image_file FROM pictures WHERE image_file IS NOT NULL")
        return [str(r[0]) for r in rows]
    finally:
        conn.close()


def _place(files: list[str], src: Path, dst: Path, link: bool) -> bool:
    """Hard-link (or with ``link`` False, copy) ``files`` from ``src`` to ``dst``; False as soon as a link cannot
    be made on this filesystem (nothing else is wrong then)."""
    top = src.resolve()
    for rel in files:
        source = (src / rel).resolve()
        if top not in source.parents:
            raise CatalogError(f"a stored picture path leads outside the picture folder: {rel!r}")
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(source, target)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno in _NO_LINK:
                    return False
                raise
        else:
            shutil.copyfile(source, target)
    return True


def _copy_index(folder: Path, dest: Path, seq: int) -> None:
    """Copy the newest index checkpoint of ``folder`` not ahead of ``seq`` (one that vanishes meanwhile: the next)."""
    found = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _INDEX.match(p.name))), reverse=True)
    for s, path in found:
        if s <= seq:
            with contextlib.suppress(FileNotFoundError):
                shutil.copyfile(path, dest / path.name)
                return


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def backup(catalog: str | os.PathLike[str], dest: str | os.PathLike[str], link: bool = False) -> BackupReport:
    """Copy the embedded catalogue at ``catalog`` to ``dest`` (a new directory) as described in the module
    docstring; ``link``: hard-link the pictures instead of copying them (same filesystem only; they are never
    modified in place by lookalike). Raises :class:`StorageFullError` when the disk fills (nothing left behind)."""
    started = time.perf_counter()
    root, target = Path(catalog), Path(dest)
    if not (root / MANIFEST).is_file():
        raise CatalogNotFoundError(f"no lookalike catalogue at {root} (missing {MANIFEST})")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CatalogExistsError(f"{target} exists and is not empty: choose a new folder for the backup")
    data, _, _, generation = locate(root)
    images = root / "images"
    manifest = json.loads((data / MANIFEST).read_text())
    manifest.pop("generation", None)
    partial = target.parent / f".{target.name}.partial-{secrets.token_hex(4)}"
    staging = images / f".backup-{secrets.token_hex(4)}"
    try:
        (partial / "images").mkdir(parents=True)
        with PictureStore(images).locked():  # no picture of the snapshot can go before it is linked
            seq = _snapshot_store(data / STORE_FILE, partial / STORE_FILE)
            files = _picture_files(partial / STORE_FILE)
            staged = _place(files, images, partial / "images" if link else staging, True)
            if not staged:  # no links here: copy under the lock
                _place(files, images, partial / "images", False)
        if staged and not link:
            _place(files, staging, partial / "images", False)
        _copy_index(data, partial, seq)
        if (data / "models").is_dir():
            shutil.copytree(data / "models", partial / "models")
        atomic_write(partial / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        with Catalog.open(partial) as copy:  # the index brought to the snapshot and checkpointed; checked
            problems = copy.verify()["problems"]
            products = len(copy)
            copy.checkpoint()
        os.sync()  # every file of the copy durable before it takes its name
        if target.exists():
            target.rmdir()
        os.rename(partial, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if is_disk_full(exc):
            raise full_disk_error(exc, f"writing the backup {target}") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    return BackupReport(target, generation, seq, products, len(files), _size(target), seconds, problems)
