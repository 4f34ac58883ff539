"""The ingest's picture writes (issue 15): ways of storing a batch's picture copies durably, side by side.

    python bench/picture_writes.py                   # 2,000 224-px JPEGs, 3 rounds, batches of 64
    python bench/picture_writes.py --end-to-end      # ... and Catalog.ingest with the old and the new writes

Every method stores the same pictures into a fresh folder in batches of 64 and is durable (power loss) when
its batch returns, except ``no_durability`` (the floor: what the writes cost with no flush at all). Rounds
alternate the methods (in a rotated order), and the page cache is flushed (``os.sync``) before each, so one
method's dirty pages are not another's to flush. Per picture, in ms, median of the rounds:

* ``per_file_fsync``: the store before issue 15 (``save`` in 16 threads: temp file, ``fsync``, rename);
* ``batch_fsync``: temp files written without flush, then all fsynced together from the pool, renamed,
  and the batch's folders fsynced;
* ``syncfs_x2``: temp files written, one ``syncfs`` of the picture folder's filesystem, renamed, one more
  ``syncfs`` (the renames);
* ``syncfs_dirs``: the same with the folders fsynced after the renames instead of the second ``syncfs``;
* ``hardlink_fsync``: ``os.link`` from the source file to a temp name (the stored bytes ARE the source bytes
  for these pictures), the link re-read and re-hashed (the source may have changed since it was hashed) and
  fsynced (the source's data, if not on disk yet, and its inode), renamed, the batch's folders fsynced;
* ``hardlink_syncfs``: the same links renamed, then one ``syncfs`` instead of the fsyncs;
* ``copy_file_range``: the source copied by the kernel into the temp file, then as ``syncfs_x2``;
* ``pack``: the batch appended into one file, one fsync, renamed, folder fsynced (raw cost only);
* ``store``: ``PictureStore.save_many`` as it is now, given the source files (``Catalog.ingest``'s call);
* ``store_copy``: ``PictureStore.save_many`` without them (its copy path: per-file fsync, folders fsynced).

``--end-to-end`` times ``Catalog.ingest`` (worker processes, the default model) with the store's writes and
with the old per-file fsync, alternating, and the writer thread's time inside ``save_many``. Prints JSON
(``--json FILE`` keeps it).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, CSV_224, load_average, machine, write_json

from lookalike.catalog.pictures import PictureStore
from lookalike.fsutil import atomic_write
from lookalike.imaging import DecodeLimits, image_format
from lookalike.sources import read_csv

LIMITS = DecodeLimits()
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass
class Pic:
    """A :class:`~lookalike.catalog.pictures.NewPicture` with its source file."""

    sha: str
    data: bytes
    fmt: str | None
    source: str
    image: None = None


def load(n: int) -> list[Pic]:
    out = []
    for r in list(read_csv(CSV_224))[:n]:
        assert r.source is not None
        data = Path(r.source).read_bytes()
        out.append(Pic(hashlib.sha256(data).hexdigest(), data, image_format(data)[0], r.source))
    return out


def rel_of(p: Pic) -> str:
    """Where the store keeps the picture; the header is parsed as ``save`` does (same CPU for every method)."""
    _, size = image_format(p.data)
    assert p.fmt == "JPEG" and size is not None and max(size) <= 1024 and len(p.data) <= 1_000_000  # not re-encoded
    return f"{p.sha[:2]}/{p.sha}.jpg"


def syncfs(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(target: Path, data: bytes) -> str:
    target.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return tmp


# --- the methods: (root, batch, pool) -> None, durable on return -----------------------------------------
def per_file_fsync(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    def one(p: Pic) -> None:
        target = root / rel_of(p)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, p.data)

    list(pool.map(one, batch))


def no_durability(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    def one(p: Pic) -> None:
        target = root / rel_of(p)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, p.data, fsync=False)

    list(pool.map(one, batch))


def _temps(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> list[tuple[str, Path]]:
    def one(p: Pic) -> tuple[str, Path] | None:
        target = root / rel_of(p)
        return None if target.exists() else (write_temp(target, p.data), target)

    return [t for t in pool.map(one, batch) if t is not None]


def _rename(temps: list[tuple[str, Path]]) -> set[Path]:
    for tmp, target in temps:
        os.replace(tmp, target)
    return {target.parent for _, target in temps}


def batch_fsync(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    temps = _temps(root, batch, pool)

    def flush(tmp: str) -> None:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    list(pool.map(flush, [t for t, _ in temps]))
    list(pool.map(fsync_dir, _rename(temps)))


def syncfs_x2(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    temps = _temps(root, batch, pool)
    syncfs(root)
    _rename(temps)
    syncfs(root)


def syncfs_dirs(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    temps = _temps(root, batch, pool)
    syncfs(root)
    list(pool.map(fsync_dir, _rename(temps)))


def _link_temp(root: Path, p: Pic) -> tuple[str, Path] | None:
    """The source hard-linked to a temp name and re-hashed (it may have changed since it was hashed)."""
    target = root / rel_of(p)
    if target.exists():
        return None
    target.parent.mkdir(exist_ok=True)
    tmp = f"{target.parent}/.{target.name}.{os.urandom(6).hex()}.tmp"
    os.link(p.source, tmp)
    with open(tmp, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == p.sha
    return tmp, target


def hardlink_fsync(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    def one(p: Pic) -> tuple[str, Path] | None:
        done = _link_temp(root, p)
        if done is not None:
            fd = os.open(done[0], os.O_RDONLY)
            try:
                os.fsync(fd)  # the source's data, if it was not on disk yet, and its inode (the link count)
            finally:
                os.close(fd)
        return done

    temps = [t for t in pool.map(one, batch) if t is not None]
    list(pool.map(fsync_dir, _rename(temps)))


def hardlink_syncfs(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    temps = [t for t in pool.map(lambda p: _link_temp(root, p), batch) if t is not None]
    _rename(temps)
    syncfs(root)  # the links, and the source's data if it was not on disk yet (a link means one filesystem)


def copy_file_range(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    def one(p: Pic) -> tuple[str, Path] | None:
        target = root / rel_of(p)
        if target.exists():
            return None
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        src = os.open(p.source, os.O_RDONLY)
        try:
            left = len(p.data)
            while left > 0:
                done = os.copy_file_range(src, fd, left)
                if done == 0:
                    break
                left -= done
        finally:
            os.close(src)
            os.close(fd)
        return tmp, target

    temps = [t for t in pool.map(one, batch) if t is not None]
    syncfs(root)
    _rename(temps)
    syncfs(root)


def pack(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    for p in batch:
        rel_of(p)
    target = root / f"{batch[0].sha}.pack"
    atomic_write(target, b"".join(p.data for p in batch))
    fsync_dir(root)


def store(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    saved = PictureStore(root).save_many(batch, LIMITS, pool, [p.source for p in batch])  # type: ignore[arg-type]
    assert not any(isinstance(r, Exception) for r in saved.values()), saved


def store_copy(root: Path, batch: list[Pic], pool: ThreadPoolExecutor) -> None:
    saved = PictureStore(root).save_many(batch, LIMITS, pool)  # type: ignore[arg-type]
    assert not any(isinstance(r, Exception) for r in saved.values()), saved


METHODS: dict[str, Callable[[Path, list[Pic], ThreadPoolExecutor], None]] = {
    "per_file_fsync": per_file_fsync,
    "batch_fsync": batch_fsync,
    "syncfs_x2": syncfs_x2,
    "syncfs_dirs": syncfs_dirs,
    "hardlink_fsync": hardlink_fsync,
    "hardlink_syncfs": hardlink_syncfs,
    "copy_file_range": copy_file_range,
    "pack": pack,
    "store": store,
    "store_copy": store_copy,
    "no_durability": no_durability,
}


def time_method(name: str, pics: list[Pic], batch_size: int, pool: ThreadPoolExecutor) -> float:
    """ms per picture to store ``pics`` in a fresh folder (page cache flushed before)."""
    root = CACHE / "picture-writes" / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.sync()
    method = METHODS[name]
    t = time.perf_counter()
    for i in range(0, len(pics), batch_size):
        method(root, pics[i : i + batch_size], pool)
    seconds = time.perf_counter() - t
    files = sum(len(f) for _, _, f in os.walk(root))
    assert files == (-(-len(pics) // batch_size) if name == "pack" else len({p.sha for p in pics})), (name, files)
    shutil.rmtree(root, ignore_errors=True)
    return seconds / len(pics) * 1e3


def header_parse_ms(pics: list[Pic]) -> float:
    t = time.perf_counter()
    for p in pics:
        image_format(p.data)
    return (time.perf_counter() - t) / len(pics) * 1e3


# --- end to end -------------------------------------------------------------------------------------------
def _old_save_many(self: PictureStore, pictures: Any, limits: DecodeLimits, io_pool: Any, sources: Any = None) -> Any:
    """The store's ``save_many`` before issue 15: ``save`` in the pool, each file fsynced."""

    def save(p: Any) -> Any:
        try:
            data = p.data
            _, size = image_format(data)
            assert (p.fmt or "").upper() == "JPEG" and size is not None and max(size) <= 1024
            rel = f"{p.sha[:2]}/{p.sha}.jpg"
            target = self.root / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, data)
            return rel
        except OSError as exc:
            return exc

    results = io_pool.map(save, pictures) if io_pool is not None and len(pictures) > 1 else map(save, pictures)
    return {id(p): r for p, r in zip(pictures, results, strict=True)}


def end_to_end(n: int, rounds: int, model: str) -> dict[str, Any]:
    """``Catalog.ingest`` of ``n`` pictures with the store's writes and the old ones, alternating."""
    from lookalike import Catalog, create_extractor

    recs = list(read_csv(CSV_224))[:n]
    ext = create_extractor(model)
    new = PictureStore.save_many
    rates: dict[str, list[float]] = {"old_per_file_fsync": [], "store": []}
    writer_ms: dict[str, list[float]] = {k: [] for k in rates}
    for r in range(rounds):
        for name in rates if r % 2 == 0 else reversed(list(rates)):
            spent = [0.0]
            impl = _old_save_many if name == "old_per_file_fsync" else new

            def timed(self: PictureStore, *a: Any, _impl: Any = impl, _spent: list[float] = spent) -> Any:
                t = time.perf_counter()
                try:
                    return _impl(self, *a)
                finally:
                    _spent[0] += time.perf_counter() - t

            PictureStore.save_many = timed  # type: ignore[method-assign]
            path = CACHE / "picture-writes-ingest"
            shutil.rmtree(path, ignore_errors=True)
            os.sync()
            try:
                cat = Catalog.create(path, extractor=ext)
                report = cat.ingest(recs, processes=True)
                cat.close()
            finally:
                PictureStore.save_many = new  # type: ignore[method-assign]
            shutil.rmtree(path, ignore_errors=True)
            assert not report.failed and report.embedded == len(recs), report.failed[:3]
            rates[name].append(round(report.images_per_second, 1))
            writer_ms[name].append(round(spent[0] / len(recs) * 1e3, 3))
    return {
        "model": model,
        "images": len(recs),
        "images_per_s": rates,
        "writer_pictures_ms_per_image": writer_ms,
        "median_images_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "median_writer_pictures_ms_per_image": {k: statistics.median(v) for k, v in writer_ms.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--end-to-end", action="store_true", help="also Catalog.ingest, old writes vs the store's")
    parser.add_argument("--e2e-images", type=int, default=2000)
    parser.add_argument("--e2e-rounds", type=int, default=3)
    parser.add_argument("--model", default="lookalike-fashion")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pics = load(args.images)
    out: dict[str, Any] = {
        "machine": machine(),
        "images": len(pics),
        "mean_bytes": round(sum(len(p.data) for p in pics) / len(pics)),
        "batch_size": args.batch_size,
        "header_parse_ms_per_image": round(header_parse_ms(pics), 4),
    }
    per: dict[str, list[float]] = {m: [] for m in args.methods}
    with ThreadPoolExecutor(16, thread_name_prefix="bench-pictures") as pool:
        for r in range(args.rounds):
            order = args.methods[r % len(args.methods) :] + args.methods[: r % len(args.methods)]
            for name in order:
                per[name].append(round(time_method(name, pics, args.batch_size, pool), 4))
            print(f"round {r + 1}: { ({k: v[-1] for k, v in per.items()}) }", file=sys.stderr, flush=True)
    base = statistics.median(per["per_file_fsync"]) if "per_file_fsync" in per and args.rounds else None
    out["ms_per_picture"] = (
        {}
        if not args.rounds
        else {
            name: {
                "median": statistics.median(v),
                "rounds": v,
                **({"x_faster_than_per_file_fsync": round(base / statistics.median(v), 2)} if base else {}),
            }
            for name, v in per.items()
        }
    )
    if args.end_to_end:
        out["end_to_end"] = end_to_end(args.e2e_images, args.e2e_rounds, args.model)
    out["load_average_after"] = load_average()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
