"""``lookalike check`` in depth, and ``--repair``: rebuild from the stored pictures and rows what can be rebuilt.

:func:`inspect` adds to :func:`~lookalike.catalog.check.check_catalog` (SQLite's page check, the index against the
store, picture files present) what an embedded catalogue can also be checked for: every product has its vectors
and every vector a product, each vector has the model's width and unit length, each picture file still has the
SHA-256 recorded for it, the model's weights have the manifest's SHA-256, a product without a known colour has
its predicted one. Each :class:`Finding` says whether it can be repaired.

:func:`repair` rebuilds: a damaged store (:mod:`lookalike.catalog.salvage`), vectors of products missing or bad
(embedded again from the stored pictures, with their predicted colours), vectors without a product (deleted), the
index (from the store). A product whose picture is missing or damaged cannot be rebuilt: it is listed and kept,
or deleted with ``drop_missing``. A model whose weights changed cannot be repaired here either.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.backends.embedded import STORE_FILE, EmbeddedBackend
from lookalike.catalog.check import verify_backend
from lookalike.catalog.facade import Catalog
from lookalike.catalog.generations import locate
from lookalike.catalog.model_files import load_extractor
from lookalike.catalog.reembed import Job, SyncReport, reembed
from lookalike.catalog.salvage import salvage_store
from lookalike.colour.families import family_index
from lookalike.errors import CatalogDamagedError, LookalikeError
from lookalike.product import PREDICTED_COLOUR
from lookalike.store.health import connect

__all__ = ["Finding", "RepairReport", "inspect", "repair"]

_UNIT_TOLERANCE = 1e-2


@dataclass(frozen=True)
class Finding:
    """One thing wrong: its ``kind`` (store, model, index, vectors, orphans, picture, colour), what it is, the
    product concerned (when one is) and whether :func:`repair` can rebuild it."""

    kind: str
    message: str
    product: str | None = None
    repairable: bool = True


@dataclass
class RepairReport:
    """What :func:`repair` rebuilt (``fixed``), what it deleted (``dropped``: product ids) and what is left."""

    fixed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    left: list[Finding] = field(default_factory=list)


def _read(db: Path) -> sqlite3.Connection:
    conn, _ = connect(db)
    return conn


def _vector_findings(conn: sqlite3.Connection, dim: int) -> Iterator[Finding]:
    for (pid,) in conn.execute(
        "SELECT id FROM products p WHERE n_pictures != (SELECT COUNT(*) FROM pictures x WHERE x.product = p.rowid)"
    ):
        yield Finding("vectors", f"product {pid!r}: some of its pictures have no vector", pid)
    (orphans,) = conn.execute(
        "SELECT COUNT(*) FROM pictures x WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.rowid = x.product)"
    ).fetchone()
    if orphans:
        yield Finding("orphans", f"{orphans} vectors belong to no product")
    bad: set[str] = set()
    cur = conn.execute("SELECT p.id, x.vec FROM pictures x JOIN products p ON p.rowid = x.product")
    while rows := cur.fetchmany(4096):
        for pid, blob in rows:
            if len(blob) != dim * 4:
                bad.add(pid)
                continue
            vec = np.frombuffer(blob, dtype=np.float32)
            if not np.isfinite(vec).all() or abs(float(vec @ vec) - 1.0) > _UNIT_TOLERANCE:
                bad.add(pid)
    for pid in sorted(bad):
        yield Finding("vectors", f"product {pid!r}: a vector is not a unit {dim}-d vector", pid)


def _picture_findings(conn: sqlite3.Connection, images: Path, hashes: bool) -> Iterator[Finding]:
    top = images.resolve()
    checked: dict[str, str | None] = {}  # file -> what is wrong with it (None: sound)
    rows = conn.execute(
        "SELECT p.id, x.image_file, x.image_sha FROM pictures x JOIN products p ON p.rowid = x.product ORDER BY x.rowid"
    ).fetchall()
    for pid, rel, sha in rows:
        if rel not in checked:
            path = (images / rel).resolve() if rel else None
            if path is None or top not in path.parents or not os.path.isfile(path):
                checked[rel] = f"picture {rel} is missing from {images}"
            elif hashes and sha and _sha256(path) != sha:
                checked[rel] = f"picture {rel} is damaged (its SHA-256 is not the one recorded)"
            else:
                checked[rel] = None
        if checked[rel] is not None:
            yield Finding("picture", f"product {pid!r}: {checked[rel]}", pid, repairable=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _colour_findings(conn: sqlite3.Connection) -> Iterator[Finding]:
    for pid, colour, extra in conn.execute("SELECT id, colour, extra FROM products"):
        if family_index(colour) < 0 and f'"{PREDICTED_COLOUR}"' not in (extra or ""):
            yield Finding("colour", f"product {pid!r}: no known colour and no predicted one", pid)


def inspect(catalog: Catalog, hashes: bool = True) -> list[Finding]:
    """Everything wrong with ``catalog`` (see the module docstring); empty when it is sound. ``hashes``: re-read
    every picture file to check its SHA-256 (else only that it is there)."""
    backend = catalog.backend
    result = verify_backend(backend)
    findings = [Finding("store", p) for p in result["problems"] if p.startswith("product store")]
    if result.get("missing_from_index") or result.get("orphans_in_index"):
        missing, orphans = result.get("missing_from_index"), result.get("orphans_in_index")
        what = f"{missing} vectors missing from the index, {orphans} in the index without a product"
        findings.append(Finding("index", f"index and store differ: {what}"))
    try:
        ext = load_extractor(catalog.manifest["extractor"], catalog.path, str(catalog.path))
        if ext.dim != catalog.dim:
            findings.append(Finding("model", f"the model gives {ext.dim}-d vectors, the manifest says {catalog.dim}"))
    except LookalikeError as exc:
        findings.append(Finding("model", f"model: {exc}", repairable=False))
    if not isinstance(backend, EmbeddedBackend):
        return findings + [Finding("picture", p, repairable=False) for p in result["problems"] if "picture" in p]
    conn = _read(Path(backend.path))
    try:
        findings += _vector_findings(conn, catalog.dim)
        findings += _picture_findings(conn, catalog.images_dir, hashes)
        findings += _colour_findings(conn)
    except sqlite3.DatabaseError as exc:
        findings.append(Finding("store", f"product store: {exc} (while reading its rows)"))
    finally:
        conn.close()
    return findings


def _delete_orphans(db: Path) -> int:
    """Delete the vectors whose product is gone (tombstoned, so the index drops them too)."""
    conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        seq = int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]) + 1
        ids = [r[0] for r in conn.execute(
            "SELECT rowid FROM pictures x WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.rowid = x.product)"
        )]  # fmt: skip
        conn.executemany("DELETE FROM pictures WHERE rowid = ?", [(i,) for i in ids])
        conn.executemany("INSERT OR REPLACE INTO tombstones(rowid, seq) VALUES (?, ?)", [(i, seq) for i in ids])
        conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
        conn.execute("COMMIT")
        return len(ids)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def repair(
    path: str | os.PathLike[str], drop_missing: bool = False, hashes: bool = True, **open_kw: Any
) -> RepairReport:
    """Repair the embedded catalogue at ``path`` (its serving generation): see the module docstring. Run it with
    the catalogue otherwise idle when its store is damaged (the store file is replaced)."""
    report = RepairReport()
    data = locate(Path(path))[0]
    try:
        catalog = Catalog.open(path, **open_kw)
    except CatalogDamagedError:  # the store's first pages: salvage before anything can open it
        report.fixed.append(salvage_store(data / STORE_FILE).summary())
        catalog = Catalog.open(path, **open_kw)
    try:
        findings = inspect(catalog, hashes)
        if any(f.kind == "store" for f in findings):
            catalog.close()
            report.fixed.append(salvage_store(data / STORE_FILE).summary())
            catalog = Catalog.open(path, **open_kw)
            findings = inspect(catalog, hashes)
        db = Path(catalog.backend.path)  # type: ignore[attr-defined]
        if any(f.kind == "orphans" for f in findings):
            report.fixed.append(f"{_delete_orphans(db)} vectors without a product deleted")
        bad_files = {f.product for f in findings if f.kind == "picture" and f.product}
        todo = sorted({f.product for f in findings if f.kind in ("vectors", "colour") and f.product} - bad_files)
        if todo and not any(f.kind == "model" and not f.repairable for f in findings):
            states = catalog.backend.states(todo)
            jobs = [Job(catalog.get(pid), states[pid].all_pictures()) for pid in todo if pid in states]
            sync = SyncReport(0, 0)
            reembed(catalog, jobs, sync)
            report.fixed.append(f"{sync.embedded} products embedded again from their stored pictures")
            bad_files |= {pid for pid, _ in sync.failed}
            report.left += [Finding("picture", f"product {pid!r}: {why}", pid, False) for pid, why in sync.failed]
        if bad_files and drop_missing:
            catalog.delete(sorted(bad_files))
            report.dropped = sorted(bad_files)
        elif bad_files:
            report.left += [f for f in findings if f.kind == "picture"]
        report.left += [f for f in findings if f.kind == "model"]
        backend = catalog.backend
        if isinstance(backend, EmbeddedBackend) and (
            any(f.kind == "index" for f in findings) or not backend.verify()["ok"]
        ):
            for old in backend.folder.glob("index.*.faiss"):  # a checkpoint that lies must not load again
                old.unlink()
            backend.rebuild()
            report.fixed.append("index rebuilt from the store")
        catalog.checkpoint()
    finally:
        catalog.close()
    return report
