"""The catalogue's copy of every product picture: a content-addressed folder, ``<sha[:2]>/<sha>.<ext>``.

Pictures are named by the SHA-256 of the bytes they were read from, so products with the same picture
share one file. A picture appears under its name only whole: it is first a temp file in the same folder
(``.<name>.<random>.tmp``), then renamed. An ingest's picture from a local file, stored as it is (not
re-encoded), becomes a hard link to that file when both are on one filesystem (no new file to create:
2-3x cheaper per picture here, issue 15); the link is re-read and re-hashed before its rename, so a
source changed since it was hashed is copied from the hashed bytes instead. A source rewritten in place
later (not replaced by a rename) changes the stored picture with it (``LOOKALIKE_LINK_PICTURES=0``
copies every picture). Any other picture is written (:func:`~lookalike.fsutil.atomic_write`).

Durability (power loss) before the rows commit: every new file is fsynced before its rename (a link's
fsync flushes the source's data and inode), and :meth:`PictureStore.save_many` then fsyncs each folder of
the batch's pictures (and the picture folder for a new ``<sha[:2]>``) before it returns; the ingest
commits a batch's rows only after that.

Every change that stores or removes pictures together with the rows that use them holds
:meth:`PictureStore.locked` (threads and, on POSIX, processes). A process killed between creating a temp
file and the rename leaves the temp file behind; :meth:`PictureStore.remove_leftovers` (run when a
catalogue opens) removes such files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from PIL import Image

try:  # POSIX: pictures are locked across processes too (a CLI ingest beside a server)
    import fcntl
except ImportError:  # pragma: no cover - Windows: across threads only
    fcntl = None  # type: ignore[assignment]

from lookalike.backends.base import CatalogBackend
from lookalike.errors import CatalogError, LookalikeError, ProductNotFoundError
from lookalike.fsutil import as_storage_error, atomic_write
from lookalike.imaging import DecodeLimits, image_format, open_image_bytes

__all__ = ["NewPicture", "PictureStore"]

LOCK = ".lock"
LINK_ENV = "LOOKALIKE_LINK_PICTURES"  # "0": copy every picture, never hard-link a source file
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# The temp file of a picture write (atomic_write: ".<name>.<random>.tmp" beside <sha[:2]>/<sha>.<ext>).
_TEMP = re.compile(r"\.(?P<sha>[0-9a-f]{64})\.(?:jpg|png|webp|gif)\.[a-z0-9_]+\.tmp")
_UNLOCKED_TEMP_AGE = 3600.0  # without cross-process locks (not POSIX), only temp files older than this go
# Folder fsync errors that mean "this filesystem cannot fsync a folder" (ignored, as SQLite does)
_NO_FOLDER_FSYNC = {
    errno.EINVAL,
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.EBADF,
    errno.EISDIR,
    errno.EACCES,
}


class NewPicture(Protocol):
    """A picture to store: its bytes, their SHA-256 and format, and the decoded image when there is one."""

    sha: str | None
    data: bytes | None
    fmt: str | None
    image: Image.Image | None


class PictureStore:
    """The picture folder ``root`` of one catalogue."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()

    def save(self, picture: NewPicture, limits: DecodeLimits) -> str:
        """Keep a copy of the picture, durably; returns its path relative to :attr:`root`. A picture in a
        format browsers may not show, over 1 MB or over 1024 px is kept as an 800-px JPEG instead (decoded
        within ``limits`` when it was not decoded yet)."""
        result = self.save_many([picture], limits, None)[id(picture)]
        if isinstance(result, Exception):
            raise result
        return result

    def save_many(
        self,
        pictures: Sequence[NewPicture],
        limits: DecodeLimits,
        io_pool: ThreadPoolExecutor | None,
        sources: Sequence[str | None] | None = None,
    ) -> dict[int, str | LookalikeError | OSError]:
        """:meth:`save` for a batch, concurrently: ``id(picture)`` -> relative path or the error. ``sources``
        (one per picture, or None): the local file each picture's bytes were read from, hard-linked
        instead of copied where it can be (see the module; ``LOOKALIKE_LINK_PICTURES=0`` copies them all).
        Every stored picture is durable on return (fsyncs issued together cost about one)."""
        linking = sources is not None and os.environ.get(LINK_ENV, "1") != "0"
        paths = list(sources) if linking else [None] * len(pictures)  # type: ignore[arg-type]

        def save(item: tuple[NewPicture, str | None]) -> tuple[str | LookalikeError | OSError, set[Path]]:
            try:
                return self._store(item[0], limits, item[1])
            except (LookalikeError, OSError) as exc:  # a full disk (ENOSPC, EDQUOT): StorageFullError
                return as_storage_error(exc, "storing a picture"), set()

        run = io_pool.map if io_pool is not None and len(pictures) > 1 else map
        results = list(run(save, list(zip(pictures, paths, strict=True))))
        folders = sorted(set().union(*(changed for _, changed in results)))
        synced = dict(zip(folders, run(_fsync_folder, folders), strict=True))  # the new names, durable
        out: dict[int, str | LookalikeError | OSError] = {}
        for p, (rel, changed) in zip(pictures, results, strict=True):
            error = next((e for f in sorted(changed) if (e := synced[f]) is not None), None)
            failed = error is not None and isinstance(rel, str)
            out[id(p)] = as_storage_error(error, "storing a picture") if failed else rel  # type: ignore[arg-type]
        return out

    def _store(self, picture: NewPicture, limits: DecodeLimits, source: str | None) -> tuple[str, set[Path]]:
        """Store one picture (not yet durable as a name): its relative path and the folders whose entries
        changed (to fsync)."""
        assert picture.sha is not None and picture.data is not None
        data, ext, as_read = _kept_bytes(picture, limits)
        rel = f"{picture.sha[:2]}/{picture.sha}.{ext}"
        target = self.root / rel
        changed = {target.parent}  # fsynced even for a picture there already: a killed writer may not have
        if target.exists():
            return rel, changed
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            changed.add(self.root)
        local = source is not None and not source.lower().startswith(("http://", "https://"))
        if not (as_read and local and _link(source, target, picture.sha)):  # type: ignore[arg-type]
            atomic_write(target, data)
        return rel, changed

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold while storing pictures and committing the rows that use them, and while deleting rows and
        removing the pictures nobody uses any more (threads and, on POSIX, processes). Pictures are
        content-addressed and shared, so without it a delete could remove a picture that an ingest had
        found already on disk and was about to commit a product for."""
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def remove_unused(self, files: Iterable[str], in_use: Callable[[str], bool]) -> None:
        """Remove the pictures among ``files`` (relative paths) that ``in_use`` says no product uses;
        a path leading outside :attr:`root` is never touched. Call it holding :meth:`locked`."""
        root = self.root.resolve()
        for rel in set(files):
            path = self.root / rel
            if root not in path.resolve().parents:  # a stored path leading outside: never touch it
                continue
            if not in_use(rel):
                with contextlib.suppress(OSError):
                    path.unlink()

    def image_path(self, products: CatalogBackend, product_id: str) -> Path:
        """The stored picture of a product (always inside :attr:`root`)."""
        rel = products.image_file_of(product_id)
        if rel is None:
            if products.get(product_id) is None:
                raise ProductNotFoundError(f"no product with id {product_id!r}")
            raise CatalogError(f"product {product_id!r} has no stored image")
        root = self.root.resolve()
        target = (self.root / rel).resolve()
        if root not in target.parents or not target.is_file():
            raise CatalogError(f"stored image for {product_id!r} is missing")
        return target

    def _temp_files(self) -> list[Path]:
        """The picture writes' temp files under :attr:`root`: only names of :data:`_TEMP`'s pattern, in
        the ``<sha[:2]>`` folder of their own picture, and plain files (no links)."""
        found: list[Path] = []
        with os.scandir(self.root) as folders:
            for folder in folders:
                if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(folder.path) as entries:
                    for entry in entries:
                        match = _TEMP.fullmatch(entry.name)
                        if match and match["sha"][:2] == folder.name and entry.is_file(follow_symlinks=False):
                            found.append(Path(entry.path))
        return found

    def remove_leftovers(self) -> int:
        """Remove the temp files of picture writes that never finished (the writer was killed before
        its rename); returns how many went. Committed pictures, and files not named as this store names
        its temp files, are never touched. Nothing is removed while another writer holds
        :meth:`locked` (it may be writing one of them now; the next open removes them), nor when the
        folder cannot be written."""
        try:
            if not self._temp_files():
                return 0
        except OSError:  # no picture folder (yet), or not readable
            return 0
        if not self._lock.acquire(blocking=False):
            return 0
        try:
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only catalogue
            self._lock.release()
            return 0
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            removed = 0
            now = time.time()
            for path in self._temp_files():  # again, under the lock: a write may have finished meanwhile
                with contextlib.suppress(OSError):
                    if fcntl is None and now - path.stat().st_mtime < _UNLOCKED_TEMP_AGE:
                        continue
                    path.unlink()
                    removed += 1
            return removed
        except OSError:  # BlockingIOError: another writer holds the lock
            return 0
        finally:
            os.close(fd)  # releases the flock
            self._lock.release()


def _kept_bytes(picture: NewPicture, limits: DecodeLimits) -> tuple[bytes, str, bool]:
    """The bytes to store, their extension, and whether they are the bytes as read (not re-encoded)."""
    assert picture.data is not None
    ext = _EXTENSIONS.get((picture.fmt or "").upper())
    data = picture.data
    _, size = image_format(data) if ext else (None, None)
    if ext is not None and len(data) <= 1_000_000 and size is not None and max(size) <= 1024:
        return data, ext, True
    img = picture.image
    if img is None:
        img = open_image_bytes(data, limits)
    thumb = img.copy()
    thumb.thumbnail((800, 800), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=88)
    return buf.getvalue(), "jpg", False


def _link(source: str, target: Path, sha: str) -> bool:
    """Make ``target`` a hard link to ``source`` (a temp link, re-read, re-hashed, fsynced, renamed);
    False, with nothing left behind, when the link cannot be made (another filesystem, not permitted, no
    such file) or the file no longer holds the bytes of ``sha`` (changed since it was hashed)."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"  # a temp name remove_leftovers knows
    try:
        os.link(source, tmp)
    except OSError:
        return False
    try:
        with open(tmp, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != sha:
                raise OSError("changed since it was hashed")
            os.fsync(fh.fileno())  # the source's data (another program may have just written it) and inode
        os.replace(tmp, target)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


def _fsync_folder(folder: Path) -> OSError | None:
    """fsync a folder, so the names added to it reach the disk; the error, if any. Nothing to do where
    folders cannot be fsynced (Windows; a filesystem that refuses it: as SQLite, such errors are ignored)."""
    if os.name != "posix":  # pragma: no cover - Windows: no fsync of a folder
        return None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return exc
    try:
        os.fsync(fd)
        return None
    except OSError as exc:
        return None if exc.errno in _NO_FOLDER_FSYNC else exc
    finally:
        os.close(fd)
