"""A new model without downtime: re-embed the stored pictures into a new generation, catch up, gate, switch.

:func:`reindex` builds (or resumes) a generation for another model beside the serving one
(:mod:`lookalike.catalog.generations`): the rows come from the serving store, the vectors and predicted colours
are recomputed from the catalogue's stored pictures (``images/``, never the source files), with the ingest's
decode workers and the model's bulk twin (:mod:`lookalike.catalog.reembed`). The serving generation keeps serving
and taking writes meanwhile; :func:`catch_up` brings the new one in step from the old store's change sequence (products
whose ``seq`` passed the last pass's; deleted ones by their ids), and is what makes the build resumable: a
product whose stored pictures the new generation already holds is not embedded again.

An optional gate (``gate(old, new) -> (passed, why)``, :mod:`lookalike.evaluate.gate` for labelled queries)
decides whether to switch. :func:`switch` makes the last pass while it holds the old store's write lock (SQLite's
``BEGIN IMMEDIATE``: the old generation's writers wait, then find it no longer serving and fail with
:class:`~lookalike.errors.CatalogSwitchedError`, nothing lost), then replaces the pointer. A crash at any point
leaves the old generation serving or the new one complete. :func:`rollback` is the same switch back to the
previous generation (which first catches up with what was written since); :func:`gc` deletes the others.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from lookalike.backends.base import UpsertItem
from lookalike.backends.embedded import STORE_FILE
from lookalike.catalog.backend_choice import probe_extractor, write_manifest
from lookalike.catalog.facade import Catalog
from lookalike.catalog.generations import (
    FOLDER,
    Pointer,
    generation_dir,
    generations,
    new_generation,
    operation_lock,
    read_manifest,
    read_pointer,
    remove_generation,
    store_meta,
    write_pointer,
)
from lookalike.catalog.ingest import keep_predicted_colour
from lookalike.catalog.model_files import keep_copy
from lookalike.catalog.reembed import Job, Progress, SyncReport, reembed
from lookalike.errors import CatalogError
from lookalike.extractors import Extractor, create_extractor
from lookalike.extractors.identity import model_entry
from lookalike.index import IndexPolicy
from lookalike.manifest import new_manifest
from lookalike.product import PREDICTED_COLOUR, Product
from lookalike.store import ProductStore

__all__ = ["Gate", "Job", "ReindexResult", "SyncReport", "catch_up", "gc", "reembed", "reindex", "rollback", "switch"]

#: ``gate(serving catalogue, new catalogue) -> (switch?, what it found)``.
Gate = Callable[[Catalog, Catalog], tuple[bool, str]]
_SETTLE_PASSES = 3  # unlocked catch-up passes before the locked one, while writes keep coming
_SMALL = 64  # a pass that changed at most this many products is followed by the locked one


@dataclass
class ReindexResult:
    """What :func:`reindex` did: the generation it built, whether it switched to it, and why (not)."""

    generation: int
    previous: int
    model: str
    build: SyncReport
    switched: bool = False
    gate: str | None = None  # what the gate found; None: no gate ran (a switch is then untested)
    reason: str | None = None  # why it did not switch
    final: SyncReport | None = None  # the locked last pass of the switch

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation, "previous": self.previous, "model": self.model,
            "switched": self.switched, "tested": self.gate is not None, "gate": self.gate, "reason": self.reason,
            "build": self.build.to_dict(), "final": self.final.to_dict() if self.final else None,
        }  # fmt: skip

    def held_back(self, run_gate: Callable[[], tuple[bool, str]] | None, switch_to: bool, hint: str = "") -> bool:
        """Whether the built generation must not serve: a product could not be embedded (``hint`` is added to
        the reason), ``run_gate`` (the gate on the serving and the built generation) kept the serving one, or
        ``switch_to`` is False; :attr:`reason` then says which."""
        if self.build.failed:
            first = self.build.failed[0]
            self.reason = (
                f"{len(self.build.failed)} products could not be embedded again (first: {first[0]}: {first[1]}){hint}"
            )
        elif run_gate is not None and not self._gate_passes(run_gate):
            self.reason = f"the gate kept generation {self.previous}: {self.gate}"
        elif not switch_to:
            self.reason = "not asked to switch"
        return self.reason is not None

    def _gate_passes(self, run_gate: Callable[[], tuple[bool, str]]) -> bool:
        passed, self.gate = run_gate()
        return passed


# --- catching up ----------------------------------------------------------------------------------
def _snapshot(db: Path, since: int) -> tuple[int, list[str], set[str] | None]:
    """From one consistent read of a store: its sequence, the ids of the products changed after ``since``, and
    (when products may have been deleted since then) every id."""
    conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
    try:
        conn.execute("BEGIN")
        seq = int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        changed = [str(r[0]) for r in conn.execute("SELECT id FROM products WHERE seq > ? ORDER BY rowid", (since,))]
        gone = since == 0 or conn.execute("SELECT 1 FROM tombstones WHERE seq > ? LIMIT 1", (since,)).fetchone()
        ids = {str(r[0]) for r in conn.execute("SELECT id FROM products")} if gone else None
        conn.execute("COMMIT")
    finally:
        conn.close()
    return seq, changed, ids


def _without_predicted(product: Product) -> Product:
    extra = product.extra or {}
    return replace(product, extra={k: v for k, v in extra.items() if k != PREDICTED_COLOUR}) if extra else product


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def catch_up(
    source: ProductStore,
    source_gen: int,
    target: Catalog,
    target_gen: int,
    progress: Progress | None = None,
    batch_size: int = 64,
    processes: bool | None = None,
) -> SyncReport:
    """Bring ``target`` in step with ``source`` (generation ``source_gen``): products changed since the last pass
    (all of them the first time) are embedded again when their pictures differ from the target's, updated when
    only their metadata does; products gone from the source are deleted. The pass's source sequence is recorded
    in the target (``synced_from``, ``synced_seq``) unless a product failed, so the next pass starts there."""
    started = time.perf_counter()
    db = Path(target.backend.path)  # type: ignore[attr-defined]
    meta = store_meta(db)
    since = int(meta.get("synced_seq", 0)) if meta.get("synced_from") == str(source_gen) else 0
    seq, changed, ids = _snapshot(source.path, since)
    report = SyncReport(source_gen, target_gen, seq)
    if ids is not None:
        gone = [pid for pid in target.backend.iter_ids() if pid not in ids]
        if gone:  # the pictures stay: the source's own delete removed those it no longer used
            report.deleted = target.backend.delete(gone)[0]
    jobs: list[Job] = []
    updates: list[UpsertItem] = []
    for chunk in _chunks(changed, 500):
        theirs, ours = source.states(chunk), target.backend.states(chunk)
        for pid in chunk:
            state, product = theirs.get(pid), source.get(pid)
            if state is None or product is None:  # deleted since the snapshot: the next pass deletes it
                continue
            pictures, old = state.all_pictures(), ours.get(pid)
            if old is None or old.all_pictures() != pictures:
                jobs.append(Job(product, pictures))
                continue
            product = keep_predicted_colour(target.backend, _without_predicted(product))
            if old.meta_hash == product.metadata_hash():
                report.unchanged += 1
            else:
                updates.append(UpsertItem(product, None))
    for part in _chunks(updates, 500):
        target.backend.upsert(list(part))
        report.updated += len(part)
    reembed(target, jobs, report, progress, batch_size, processes)
    if not report.failed:
        store_meta(db, {"synced_from": source_gen, "synced_seq": seq})
    report.seconds = time.perf_counter() - started
    return report


# --- generations: build, switch, roll back, collect ----------------------------------------------------------
def _store(root: Path, n: int) -> ProductStore:
    dim = int(read_manifest(root, n)["extractor"]["dim"])
    return ProductStore(generation_dir(root, n) / STORE_FILE, dim)


def _target(root: Path, model: str | Extractor, serving: int) -> tuple[int, Extractor]:
    """The generation to build for ``model``: an unfinished or earlier one of the same model (same name and weights)
    when there is one, else a new one (its manifest written last: a folder without one is an abandoned start)."""
    ext = model if isinstance(model, Extractor) else create_extractor(model)
    entry = model_entry(ext)
    for n in generations(root):
        m = read_manifest(root, n).get("extractor", {})
        same = m.get("name") == entry["name"] and m.get("sha256") == entry.get("sha256")
        if n != serving and same and int(m.get("dim", -1)) == ext.dim:
            return n, ext
    probe_extractor(ext)
    policy = read_manifest(root, serving).get("index", {}).get("policy") or IndexPolicy().to_dict()
    n = new_generation(root)
    folder = generation_dir(root, n)
    manifest = {**new_manifest(ext, {"backend": "embedded", "type": "faiss-flat-ip", "metric": "cosine",
                                     "policy": policy}), "generation": n}  # fmt: skip
    keep_copy(folder, ext, manifest["extractor"])  # a model that is not packaged travels with its generation
    write_manifest(folder, manifest)
    return n, ext


def reindex(
    root: str | os.PathLike[str],
    model: str | Extractor,
    gate: Gate | None = None,
    switch_to: bool = True,
    progress: Progress | None = None,
    batch_size: int = 64,
    processes: bool | None = None,
) -> ReindexResult:
    """Build (or resume) a generation of the catalogue at ``root`` for ``model`` from its stored pictures, then
    switch to it: when ``gate`` passes it, or with no gate at all (untested); not when ``switch_to`` is False or a
    product could not be embedded (``reason`` says why). The serving generation serves throughout."""
    home = Path(root)
    with operation_lock(home, "run it again"):
        serving = read_pointer(home).serving
        n, ext = _target(home, model, serving)
        source = _store(home, serving)
        target = Catalog.open(home, generation=n, extractor=ext)
        try:
            build = catch_up(source, serving, target, n, progress, batch_size, processes)
            result = ReindexResult(n, serving, ext.name, build)
            run_gate = None if gate is None else partial(_gate_on, gate, home, serving, target)
            if result.held_back(run_gate, switch_to, "; run lookalike check --repair"):
                return result
            result.final = _switch(home, n, source, target)
            result.switched = True
            return result
        finally:
            target.close()
            source.close()


def _gate_on(gate: Gate, root: Path, serving: int, target: Catalog) -> tuple[bool, str]:
    with Catalog.open(root, generation=serving) as old:
        return gate(old, target)


def _switch(root: Path, n: int, source: ProductStore, target: Catalog) -> SyncReport:
    """Catch ``target`` (generation ``n``) up with the serving generation and make it serve; the last pass holds
    the serving store's write lock, so no write between it and the new pointer is lost. Returns the passes' sum."""
    pointer = read_pointer(root)
    serving = pointer.serving
    total = SyncReport(serving, n)
    for _ in range(_SETTLE_PASSES):
        report = catch_up(source, serving, target, n)
        total = total.add(report)
        if report.failed:
            raise CatalogError(f"generation {n} cannot catch up: product {report.failed[0][0]}: {report.failed[0][1]}")
        if report.changed <= _SMALL:
            break
    lock = sqlite3.connect(source.path, timeout=30.0, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the serving generation's writers wait here (their busy timeout: 30 s)
        report = catch_up(source, serving, target, n)
        total = total.add(report)
        if report.failed:
            raise CatalogError(f"generation {n} cannot catch up: product {report.failed[0][0]}: {report.failed[0][1]}")
        target.checkpoint()
        write_pointer(root, Pointer(n, serving, tuple(r for r in pointer.removed if r != n)))
        # the old generation is in step with the new one as it is now: a rollback catches up from here
        lock.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('synced_from', ?), ('synced_seq', ?)",
            (str(n), str(target.backend.seq())),  # type: ignore[attr-defined]
        )
        lock.execute("COMMIT")
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
    return total


def switch(root: str | os.PathLike[str], n: int) -> SyncReport:
    """Make generation ``n`` serve (caught up first with what the serving one holds)."""
    home = Path(root)
    with operation_lock(home, "switch again"):
        pointer = read_pointer(home)
        if n == pointer.serving:
            raise CatalogError(f"generation {n} already serves {home}")
        if n in pointer.removed or n not in generations(home):
            raise CatalogError(f"{home} has no generation {n} (lookalike gc removed it, or it was never built)")
        source = _store(home, pointer.serving)
        target = Catalog.open(home, generation=n)
        try:
            return _switch(home, n, source, target)
        finally:
            target.close()
            source.close()


def rollback(root: str | os.PathLike[str]) -> SyncReport:
    """Switch back to the previous generation (it first catches up with what was written since the switch)."""
    previous = read_pointer(Path(root)).previous
    if previous is None:
        raise CatalogError(f"{root} has no previous generation to roll back to")
    return switch(root, previous)


def gc(root: str | os.PathLike[str], keep_previous: bool = True) -> list[int]:
    """Delete the generations that do not serve (and, unless ``keep_previous``, the one a rollback would return
    to); the shared pictures stay. Returns the numbers removed."""
    home = Path(root)
    with operation_lock(home, "run gc again"):
        pointer = read_pointer(home)
        keep = {pointer.serving} | ({pointer.previous} if keep_previous and pointer.previous is not None else set())
        removed = [n for n in generations(home) if n not in keep]
        for n in removed:
            remove_generation(home, n)
        folder = home / FOLDER
        for p in folder.iterdir() if folder.is_dir() else ():  # abandoned starts (no manifest yet)
            if p.name.isdigit() and int(p.name) not in keep and p.is_dir():
                remove_generation(home, int(p.name))
                removed.append(int(p.name))
        previous = pointer.previous if pointer.previous in keep else None
        gone = tuple(sorted({*pointer.removed, *removed}))  # numbers never used again (a stale writer's guard)
        if (previous, gone) != (pointer.previous, pointer.removed):
            write_pointer(home, Pointer(pointer.serving, previous, gone))
    return removed
