"""``lookalike reindex`` and ``gc`` for a Milvus catalogue: a collection per generation, and an alias swap.

The catalogue name is an alias (:mod:`lookalike.backends.milvus_alias`; a plain collection is adopted as
``NAME__g0`` by the first reindex). :func:`reindex` builds generation *n* in the collection ``NAME__g<n>`` (the new
model's dimension and manifest, the serving collection's index settings) while the serving one keeps serving and
taking writes: the rows (product fields) come from the serving collection, the vectors and predicted colours are
computed again from the stored pictures in the shared picture folder (:func:`~lookalike.catalog.reembed.reembed`).
A build interrupted, or refused by the gate, is resumed by the next run for the same model.

**Catching up.** Milvus keeps no change sequence, so each pass (:func:`sync`) compares every product's state in
both collections (``meta_hash`` and each picture's ``image_sha``/``image_file``): products whose pictures differ are
embedded again, those whose metadata alone differs are updated, products gone from the serving collection are
deleted. Passes repeat (at most 3) until one changes at most 64 products; the ingest errors are copied; then
``NAME__previous`` is pointed at the serving collection and ``NAME`` at the new one (``alter_alias``). A writer
bound to the old collection checks before each write that ``NAME`` still names it
(:class:`~lookalike.backends.milvus_alias.GuardedMilvusBackend`), so after the swap its writes fail (exit 75,
HTTP 503) rather than go to a generation that no longer serves. A write that passed its check just before the swap
lands in the old collection: after ``tail_s`` seconds a last pass copies what changed in the old collection since
the pass before the swap (against what that pass saw, so writes made to the new collection meanwhile are not
undone, unless the same product was written in both). What is not caught up: a write to the old collection that
lands after that last pass (a write that took longer than ``tail_s`` after its check), and a write that changes
nothing this compares (ingest errors after the copy).

:func:`rollback` is the same switch back to the collection ``NAME__previous`` names (caught up first with what was
written since, embedded with its own model); :func:`gc` drops the generations no alias names (the previous one too
with ``keep_previous=False``). One reindex, rollback or gc at a time: ``flock`` on ``.reindex.lock`` in the
catalogue's picture folder (every lookalike process of a deployment shares it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from lookalike.backends.base import StoredPicture, UpsertItem
from lookalike.catalog.backend_choice import probe_extractor
from lookalike.catalog.facade import Catalog
from lookalike.catalog.ingest import keep_predicted_colour
from lookalike.catalog.ingest_lock import try_flock
from lookalike.catalog.reembed import Job, Progress, SyncReport, reembed
from lookalike.catalog.reindex import Gate, ReindexResult
from lookalike.errors import CatalogError
from lookalike.extractors import Extractor, create_extractor
from lookalike.extractors.identity import model_entry
from lookalike.product import PREDICTED_COLOUR, Product

__all__ = ["LOCK", "TAIL_S", "gc", "reindex", "rollback", "sync"]

LOCK = ".reindex.lock"
TAIL_S = 2.0  # after the swap, before the last pass: longer than a write takes from its check to Milvus
_SETTLE_PASSES = 3
_SMALL = 64
_CHUNK = 500
_wait = time.sleep  # the tail wait (tests put a write there)
State = tuple[str | None, tuple[StoredPicture, ...]]  # a product's meta_hash and pictures


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _states(catalog: Catalog) -> dict[str, State]:
    """Every product's state in ``catalog`` (one scan of the ids, then their states ``_CHUNK`` at a time)."""
    out: dict[str, State] = {}
    for chunk in _chunks(list(catalog.backend.iter_ids())):
        for pid, state in catalog.backend.states(chunk).items():
            out[pid] = (state.meta_hash, state.all_pictures())
    return out


def _without_predicted(product: Product) -> Product:
    extra = product.extra or {}
    return replace(product, extra={k: v for k, v in extra.items() if k != PREDICTED_COLOUR}) if extra else product


def _number(catalog: Catalog) -> int:
    return int(catalog.manifest.get("generation", 0))


def sync(
    source: Catalog,
    target: Catalog,
    seen: dict[str, State] | None = None,
    progress: Progress | None = None,
    batch_size: int = 64,
    processes: bool | None = None,
) -> tuple[SyncReport, dict[str, State]]:
    """One catch-up pass from ``source`` into ``target`` (both Milvus catalogues); returns the report and the
    source's states it saw. Without ``seen`` every product is compared (and products missing from the source are
    deleted from the target); with ``seen`` (the states an earlier pass returned) only the products whose source
    state changed since, and those deleted since."""
    started = time.perf_counter()
    now = _states(source)
    report = SyncReport(_number(source), _number(target))
    if seen is None:
        gone = [pid for pid in target.backend.iter_ids() if pid not in now]
        changed = list(now)
    else:
        gone = [pid for pid in seen if pid not in now]
        changed = [pid for pid, state in now.items() if seen.get(pid) != state]
    if gone:  # the pictures stay: the source's own delete removed those it no longer used
        report.deleted = target.backend.delete(gone)[0]
    jobs: list[Job] = []
    updates: list[UpsertItem] = []
    for chunk in _chunks(changed):
        ours, products = target.backend.states(chunk), source.backend.get_many(chunk)  # type: ignore[attr-defined]
        for pid in chunk:
            product, old = products.get(pid), ours.get(pid)
            if product is None:  # deleted since the states were read: the next pass deletes it
                continue
            pictures = now[pid][1]
            if old is None or old.all_pictures() != pictures:
                jobs.append(Job(product, pictures))
                continue
            product = keep_predicted_colour(target.backend, _without_predicted(product))
            if old.meta_hash == product.metadata_hash():
                report.unchanged += 1
            else:
                updates.append(UpsertItem(product, None))
    for part in _chunks(updates):
        target.backend.upsert(list(part))
        report.updated += len(part)
    reembed(target, jobs, report, progress, batch_size, processes)
    report.seconds = time.perf_counter() - started
    return report, now


# --- where things are -----------------------------------------------------------------------------------------
class _Place:
    """A Milvus catalogue's address (name, URI, token, picture folder) and a client for its aliases."""

    def __init__(self, name: str, uri: str | None, token: str | None, images_dir: str | os.PathLike[str] | None):
        from lookalike.backends.milvus_client import connect

        self.name, self.uri, self.token = name, uri, token
        self.client = connect(uri, token)
        self.images_dir: Path | None = Path(images_dir) if images_dir is not None else None

    def open(self, collection: str | None = None, extractor: str | Extractor | None = None) -> Catalog:
        """The catalogue by its name (bound to the serving collection), or one generation's ``collection``."""
        cat = Catalog.open(
            collection or self.name, extractor=extractor, backend="milvus", uri=self.uri, token=self.token,
            images_dir=self.images_dir,
        )  # fmt: skip
        self.images_dir = cat.images_dir  # the shared folder: every generation's pictures
        return cat

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


@contextlib.contextmanager
def _operation(
    name: str, uri: str | None, token: str | None, images_dir: str | os.PathLike[str] | None, what: str
) -> Iterator[_Place]:
    """The catalogue's place, holding its operation lock (never waited for: :class:`CatalogBusyError`)."""
    from lookalike.backends.milvus_alias import adopt, resolve

    place = _Place(name, uri, token, images_dir)
    try:
        if resolve(place.client, name) is None:
            adopt(place.client, name)  # finishes an adoption cut short between its rename and its alias
        with place.open():  # finds the picture folder (and refuses what is not a catalogue)
            pass
        folder = place.images_dir
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        with try_flock(
            folder / LOCK, f"another reindex, rollback or gc is running on {name!r}; {what} when it has finished"
        ):
            yield place
    finally:
        place.close()


def _same_model(manifest: dict[str, Any], entry: dict[str, Any], dim: int) -> bool:
    m = manifest.get("extractor", {})
    return bool(m.get("name") == entry["name"] and m.get("sha256") == entry.get("sha256") and m.get("dim") == dim)


def _target(place: _Place, source: Catalog, model: str | Extractor) -> Catalog:
    """The generation to build for ``model``: an earlier one of the same model (same name, weights, width) that
    does not serve, else a new collection ``NAME__g<n>`` with the serving one's index settings."""
    from lookalike.backends.milvus_alias import (
        collection_manifest,
        generation_collection,
        generation_collections,
        mark_generation,
    )

    ext = model if isinstance(model, Extractor) else create_extractor(model)
    entry = model_entry(ext)
    found = generation_collections(place.client, place.name)
    serving = source.backend.collection  # type: ignore[attr-defined]
    for collection in found.values():
        if collection != serving and _same_model(collection_manifest(place.client, collection), entry, ext.dim):
            return place.open(collection, ext)
    probe_extractor(ext)
    n = max([*found, _number(source)]) + 1
    collection = generation_collection(place.name, n)
    info = source.manifest.get("index", {})
    made = Catalog.create(
        collection, extractor=ext, backend="milvus", uri=place.uri, token=place.token, images_dir=place.images_dir,
        index_type=info.get("type"), index_params=info.get("params"), search_params=info.get("search_params"),
        partition_key=info.get("partition_key"), consistency_level=str(info.get("consistency") or "Strong"),
    )  # fmt: skip
    made.close()
    mark_generation(place.client, place.name, collection, n)
    return place.open(collection, ext)


# --- reindex, switch, rollback, gc ----------------------------------------------------------------------------
def reindex(
    name: str,
    model: str | Extractor,
    *,
    uri: str | None,
    token: str | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    gate: Gate | None = None,
    switch_to: bool = True,
    progress: Progress | None = None,
    batch_size: int = 64,
    processes: bool | None = None,
    tail_s: float = TAIL_S,
) -> ReindexResult:
    """Build (or resume) a generation of the Milvus catalogue ``name`` for ``model`` from its stored pictures, then
    switch the alias to it: when ``gate`` passes it, or with no gate (untested); not when ``switch_to`` is False or a
    product could not be embedded (``reason`` says why). The serving collection serves throughout."""
    from lookalike.backends.milvus_alias import adopt

    with _operation(name, uri, token, images_dir, "run it again") as place:
        adopt(place.client, name)
        source = place.open()
        try:
            target = _target(place, source, model)
            try:
                build, _ = sync(source, target, None, progress, batch_size, processes)
                result = ReindexResult(_number(target), _number(source), target.extractor_name, build)
                if result.held_back(None if gate is None else partial(gate, source, target), switch_to):
                    return result
                result.final = _switch(place, source, target, tail_s)
                result.switched = True
                return result
            finally:
                target.close()
        finally:
            source.close()


def _switch(place: _Place, source: Catalog, target: Catalog, tail_s: float) -> SyncReport:
    """Catch ``target`` up with the serving ``source``, point the aliases (previous: ``source``; the catalogue:
    ``target``), wait ``tail_s`` and copy what reached ``source`` meanwhile. Returns the passes' sum."""
    from lookalike.backends.milvus_alias import point, previous_alias

    total = SyncReport(_number(source), _number(target))
    seen: dict[str, State] = {}
    for _ in range(_SETTLE_PASSES):
        report, seen = sync(source, target)
        total = total.add(report)
        if report.failed:
            raise CatalogError(
                f"generation {_number(target)} cannot catch up: product {report.failed[0][0]}: {report.failed[0][1]}"
            )
        if report.changed <= _SMALL:
            break
    errors = [(e["id"], e.get("image"), str(e["error"])) for e in source.backend.errors()]
    if errors:
        target.backend.upsert([], errors)
    target.checkpoint()
    point(place.client, previous_alias(place.name), source.backend.collection)  # type: ignore[attr-defined]
    point(place.client, place.name, target.backend.collection)  # type: ignore[attr-defined]  # the switch
    _wait(max(0.0, tail_s))
    report, _ = sync(source, target, seen)  # writes that passed their check just before the swap
    return total.add(report)


def rollback(
    name: str,
    *,
    uri: str | None,
    token: str | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    tail_s: float = TAIL_S,
) -> SyncReport:
    """Point the catalogue back at the collection ``NAME__previous`` names (caught up first with what was written
    since the switch); the collection that served becomes the previous one."""
    from lookalike.backends.milvus_alias import alias_target, previous_alias

    with _operation(name, uri, token, images_dir, "switch again") as place:
        previous = alias_target(place.client, previous_alias(name))
        source = place.open()
        try:
            if previous is None:
                raise CatalogError(f"the Milvus catalogue {name!r} has no previous generation to roll back to")
            if previous == source.backend.collection:  # type: ignore[attr-defined]
                raise CatalogError(f"collection {previous!r} already serves {name!r}")
            with place.open(previous) as target:
                return _switch(place, source, target, tail_s)
        finally:
            source.close()


def gc(
    name: str,
    *,
    uri: str | None,
    token: str | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    keep_previous: bool = True,
) -> list[int]:
    """Drop the generations of ``name`` (their collections and errors collections) that no alias names; with
    ``keep_previous=False`` the alias ``NAME__previous`` goes first, so the previous one is dropped too. The shared
    pictures stay. Returns the numbers dropped."""
    from lookalike.backends.milvus_alias import alias_target, generation_collections, previous_alias, resolve
    from lookalike.backends.milvus_client import calling
    from lookalike.backends.milvus_schema import ERRORS_SUFFIX

    with _operation(name, uri, token, images_dir, "run gc again") as place:
        client = place.client
        if not keep_previous and alias_target(client, previous_alias(name)) is not None:
            with calling(f"drop_alias {previous_alias(name)!r}"):
                client.drop_alias(previous_alias(name))
        serving = resolve(client, name)
        removed = []
        for n, collection in generation_collections(client, name).items():
            with calling(f"list_aliases {collection!r}"):
                named = client.list_aliases(collection).get("aliases") or []
            if collection == serving or named:
                continue
            with calling(f"drop_collection {collection!r}"):
                client.drop_collection(collection)
                if client.has_collection(collection + ERRORS_SUFFIX):
                    client.drop_collection(collection + ERRORS_SUFFIX)
            removed.append(n)
    return removed
