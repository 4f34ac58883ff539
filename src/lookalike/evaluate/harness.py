"""Embed a task's queries and gallery with an extractor, rank exactly, and score the ranking.

Decoding and preprocessing run in a thread pool a couple of batches ahead of the model. Embeddings are
cached per extractor (name, settings, weights file, and a fingerprint of its output on fixed probe
pictures) and per image (path, size, mtime), in ``.npy`` files named by the dataset and a hash of the
file list; a later run reuses every image it finds in any cached file of the same extractor, so the
catalogue is embedded once for all tasks.

Ranking is exact cosine similarity (a float32 matrix product of L2-normalised rows) with ties broken by
gallery order, so the numbers are reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from lookalike.evaluate import metrics as M
from lookalike.evaluate.datasets import Criterion, EvalTask, ImageSet
from lookalike.extractors.base import Extractor
from lookalike.imaging.decode import load_image

__all__ = [
    "RESIZE_MODES",
    "CriterionResult",
    "EmbeddingCache",
    "TaskResult",
    "embed_paths",
    "evaluate_task",
    "extractor_cache_key",
    "load_model",
    "rank_exact",
    "run_evaluation",
    "score_ranking",
]

RESIZE_MODES = ("center_crop", "squash", "pad")
ProgressFn = Callable[[int, int], None]


# --- embedding --------------------------------------------------------------------------------------
def embed_paths(
    extractor: Extractor,
    paths: Sequence[Path],
    batch_size: int | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Embed image files: decode + preprocess in ``workers`` threads, the model on batches in order.
    ``flip``: embed the mirror images of the pictures instead.

    Raises the decoder's :class:`~lookalike.errors.ImageError` for an unreadable file: an evaluation
    set must be complete.
    """
    bs = batch_size or extractor.batch_size
    n_workers = workers or min(8, (os.cpu_count() or 2) + 2)
    cfg = extractor.preprocess_cfg
    draft = cfg.size if cfg is not None else None

    def prepare(path: Path) -> np.ndarray:
        img = load_image(path, draft_size=draft)
        return extractor.preprocess(ImageOps.mirror(img) if flip else img)

    out = np.zeros((len(paths), extractor.dim), dtype=np.float32)
    pending: deque[Future[np.ndarray]] = deque()
    next_index, done = 0, 0
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="lookalike-eval") as pool:
        while done < len(paths):
            while next_index < len(paths) and len(pending) < 2 * bs:
                pending.append(pool.submit(prepare, paths[next_index]))
                next_index += 1
            take = min(bs, len(pending))
            batch = [pending.popleft().result() for _ in range(take)]
            out[done : done + take] = extractor.embed_preprocessed(np.stack(batch))
            done += take
            if progress is not None:
                progress(done, len(paths))
    return out


def _probe_images() -> list[Image.Image]:
    """Two fixed synthetic pictures, neither square, textured so that any change in resizing, cropping,
    normalisation or the model moves their embeddings."""
    rng = np.random.default_rng(20240601)
    out = []
    for h, w in ((193, 257), (300, 120)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // w, yy * 255 // h, (3 * xx + 5 * yy) % 256], axis=-1)
        noise = rng.integers(-40, 41, size=(h, w, 3))
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return out


def extractor_cache_key(extractor: Extractor) -> str:
    """A key that changes when the extractor's name, settings, weights file or behaviour change.

    Behaviour is fingerprinted by embedding two fixed probe pictures with the code actually loaded, so
    an edited preprocessing or model invalidates the cache even when the settings look the same.
    Decoding (:func:`~lookalike.imaging.decode.load_image`) is not part of the key.
    """
    desc = extractor.describe()
    path = desc.get("path")
    if path and Path(path).is_file():
        st = Path(path).stat()
        desc["weights"] = [st.st_size, st.st_mtime_ns]
    probe = extractor.embed_preprocessed(np.stack([extractor.preprocess(img) for img in _probe_images()]))
    desc["probe"] = hashlib.sha256((np.round(probe.astype(np.float64), 4) + 0.0).tobytes()).hexdigest()
    digest = hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", extractor.name)[-48:]
    return f"{safe}-{digest}"


def _fingerprints(paths: Iterable[Path]) -> list[str]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            out.append(f"{p}|missing")
    return out


@dataclass
class _Entry:
    rows: dict[str, int]
    array: np.ndarray


class EmbeddingCache:
    """Embeddings per (extractor key, image fingerprint): in memory, and on disk when ``root`` is set."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self._memory: dict[str, list[_Entry]] = {}
        self._disk: dict[Path, _Entry] = {}
        self._keys: dict[int, tuple[Extractor, str]] = {}

    def key(self, extractor: Extractor) -> str:
        """:func:`extractor_cache_key`, computed once per extractor object."""
        known = self._keys.get(id(extractor))
        if known is None or known[0] is not extractor:
            known = (extractor, extractor_cache_key(extractor))
            self._keys[id(extractor)] = known
        return known[1]

    def _disk_entries(self, key: str) -> list[_Entry]:
        if self.root is None or not (self.root / key).is_dir():
            return []
        found = []
        for meta in sorted((self.root / key).glob("*.json")):
            npy = meta.with_suffix(".npy")
            if meta not in self._disk:
                try:
                    fps = json.loads(meta.read_text())["images"]
                    array = np.load(npy, mmap_mode="r")
                except (OSError, ValueError, KeyError):
                    continue
                if array.shape[0] != len(fps):
                    continue
                self._disk[meta] = _Entry({fp: i for i, fp in enumerate(fps)}, array)
            found.append(self._disk[meta])
        return found

    def lookup(self, key: str, fingerprints: Sequence[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, found mask): rows for the images any cached entry of ``key`` holds."""
        out = np.zeros((len(fingerprints), dim), dtype=np.float32)
        found = np.zeros(len(fingerprints), dtype=bool)
        for entry in [*self._memory.get(key, []), *self._disk_entries(key)]:
            if found.all():
                break
            if entry.array.shape[1] != dim:
                continue
            want = [(i, entry.rows.get(fp)) for i, fp in enumerate(fingerprints) if not found[i]]
            hits = [(i, r) for i, r in want if r is not None]
            if hits:
                idx = np.fromiter((i for i, _ in hits), dtype=np.int64)
                rows = np.fromiter((r for _, r in hits), dtype=np.int64)
                order = np.argsort(rows)  # read a memory-mapped file front to back
                out[idx[order]] = entry.array[rows[order]]
                found[idx] = True
        return out, found

    def store(self, key: str, dataset: str, fingerprints: Sequence[str], array: np.ndarray) -> Path | None:
        """Keep ``array`` for these images (atomically written to disk when the cache has a root)."""
        self._memory.setdefault(key, []).append(_Entry({fp: i for i, fp in enumerate(fingerprints)}, array))
        if self.root is None:
            return None
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()[:16]
        stem = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', dataset)}-{len(fingerprints)}-{digest}"
        tmp_npy, tmp_json = folder / f".{stem}.npy.tmp", folder / f".{stem}.json.tmp"
        with open(tmp_npy, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array, dtype=np.float32))
        tmp_json.write_text(json.dumps({"dataset": dataset, "images": list(fingerprints)}))
        os.replace(tmp_npy, folder / f"{stem}.npy")  # the .json last: a reader only trusts complete pairs
        os.replace(tmp_json, folder / f"{stem}.json")
        return folder / f"{stem}.npy"

    def embed(
        self,
        extractor: Extractor,
        images: ImageSet,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: ProgressFn | None = None,
        flip: bool = False,
    ) -> tuple[np.ndarray, int]:
        """Embeddings of ``images``, computing only the ones not cached; returns (array, n computed).
        ``flip``: of their mirror images (cached apart)."""
        key = self.key(extractor) + ("-mirror" if flip else "")
        fps = _fingerprints(images.paths)
        array, found = self.lookup(key, fps, extractor.dim)
        missing = np.flatnonzero(~found)
        if missing.size:
            paths = [images.paths[i] for i in missing]
            array[missing] = embed_paths(extractor, paths, batch_size, workers, progress, flip)
            self.store(key, images.name, fps, array)
        elif progress is not None:
            progress(len(fps), len(fps))
        return array, int(missing.size)


# --- ranking ------------------------------------------------------------------------------------------
def rank_exact(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    exclude: Sequence[int] | np.ndarray | None = None,
    chunk: int = 512,
    mirrored: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` gallery indices and cosine scores per query, best first, ties by gallery order.

    ``exclude[i]`` (>= 0) is a gallery index never returned for query i. Rows with fewer than ``k``
    candidates are padded with index -1 and score -inf. ``mirrored``: vectors of the queries' mirror
    images; a gallery item then scores the better of its two similarities (as a catalogue search).
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    nq, ng = q.shape[0], g.shape[0]
    excl = np.full(nq, -1, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
    top_idx = np.full((nq, k), -1, dtype=np.int64)
    top_score = np.full((nq, k), -np.inf, dtype=np.float32)
    for start in range(0, nq, chunk):
        sims = q[start : start + chunk] @ g.T
        if mirrored is not None:
            np.maximum(sims, np.asarray(mirrored, dtype=np.float32)[start : start + chunk] @ g.T, out=sims)
        for r in range(sims.shape[0]):
            row = sims[r]
            bad = excl[start + r]
            if 0 <= bad < ng:
                row[bad] = -np.inf
            n_cand = ng - (1 if 0 <= bad < ng else 0)
            take = min(k, n_cand)
            if take == 0:
                continue
            kth = np.partition(row, ng - take)[ng - take]
            cand = np.flatnonzero(row >= kth)
            if 0 <= bad < ng:
                cand = cand[cand != bad]
            order = np.lexsort((cand, -row[cand]))[:take]
            top_idx[start + r, :take] = cand[order]
            top_score[start + r, :take] = row[cand[order]]
    return top_idx, top_score


# --- scoring ------------------------------------------------------------------------------------------
@dataclass
class CriterionResult:
    """The metrics of one relevance criterion (means over queries, macro over query labels)."""

    name: str
    metrics: dict[str, float]
    per_label: dict[str, float]
    label_counts: dict[str, int]
    relevance: np.ndarray = field(repr=False)
    per_query: dict[str, np.ndarray] = field(repr=False)
    queries_without_relevant: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {m: round(v, 6) for m, v in self.metrics.items()},
            "per_label": {
                lab: {"P@k": round(v, 6), "queries": self.label_counts[lab]} for lab, v in self.per_label.items()
            },
            "queries_without_relevant": self.queries_without_relevant,
        }


def score_ranking(
    top_idx: np.ndarray,
    criterion: Criterion,
    query_groups: Sequence[str],
    exclude: Sequence[int],
    k: int,
) -> CriterionResult:
    """Score a ranking (gallery indices, -1 = empty) under ``criterion``."""
    codes: dict[str, int] = {}
    g_codes = np.fromiter((codes.setdefault(lab, len(codes)) for lab in criterion.gallery_labels), np.int64)
    counts = np.bincount(g_codes, minlength=len(codes)) if len(g_codes) else np.zeros(len(codes), np.int64)
    set_ids: dict[frozenset[str], int] = {}
    q_set = np.fromiter((set_ids.setdefault(a, len(set_ids)) for a in criterion.query_accepts), np.int64)
    accept = np.zeros((max(1, len(set_ids)), max(1, len(codes))), dtype=bool)
    for labels, s in set_ids.items():
        for lab in labels:
            if lab in codes:
                accept[s, codes[lab]] = True
    nq = top_idx.shape[0]
    safe = np.where(top_idx >= 0, top_idx, 0)
    if nq and len(g_codes):
        relevance = (top_idx >= 0) & accept[q_set[:, None], g_codes[safe]]
        n_rel = (accept[q_set].astype(np.int64) @ counts).astype(np.int64)
    else:
        relevance = np.zeros(top_idx.shape, dtype=bool)
        n_rel = np.zeros(nq, dtype=np.int64)
    excl = np.asarray(exclude, dtype=np.int64)
    self_hit = excl >= 0
    if self_hit.any():
        rows = np.flatnonzero(self_hit)
        n_rel[rows] -= accept[q_set[rows], g_codes[excl[rows]]]
    n_cand = len(g_codes) - self_hit.astype(np.int64)
    per_query = {
        "P@1": M.precision_at_k_batch(relevance, 1),
        f"P@{k}": M.precision_at_k_batch(relevance, k),
        f"R@{k}": M.recall_at_k_batch(relevance, k, n_rel),
        f"AP@{k}": M.average_precision_at_k_batch(relevance, k, n_rel),
        f"nDCG@{k}": M.ndcg_at_k_batch(relevance, k, n_rel),
    }
    chance = np.divide(n_rel, n_cand, out=np.zeros(nq), where=n_cand > 0)
    ceiling = np.minimum(n_rel, k) / k
    groups = list(query_groups)
    metrics = {f"m{name}": M.mean_over_queries(v) for name, v in per_query.items()}
    metrics[f"macroP@{k}"] = M.macro_average(per_query[f"P@{k}"], groups)
    metrics[f"chanceP@{k}"] = M.mean_over_queries(chance)
    metrics[f"ceilingP@{k}"] = M.mean_over_queries(ceiling)
    per_label = {str(lab): v for lab, v in M.per_label_means(per_query[f"P@{k}"], groups).items()}
    label_counts = {lab: groups.count(lab) for lab in per_label}
    return CriterionResult(
        name=criterion.name,
        metrics=metrics,
        per_label=per_label,
        label_counts=label_counts,
        relevance=relevance,
        per_query=per_query,
        queries_without_relevant=int(np.count_nonzero(n_rel == 0)),
    )


@dataclass
class TaskResult:
    """One extractor on one task: metrics per criterion, the ranking, and how long it took."""

    task: EvalTask = field(repr=False)
    model: str
    k: int
    criteria: dict[str, CriterionResult]
    top_indices: np.ndarray = field(repr=False)
    top_scores: np.ndarray = field(repr=False)
    timings: dict[str, float]
    computed: dict[str, int]
    model_info: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The task's headline numbers, keyed like ``"type mP@10"``."""
        out = {}
        for crit, metric in self.task.headline:
            name = metric.replace("@k", f"@{self.k}")
            out[f"{crit} {name}"] = self.criteria[crit].metrics[name]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "description": self.task.description,
            "model": self.model,
            "model_info": self.model_info,
            "k": self.k,
            "queries": len(self.task.queries),
            "gallery": len(self.task.gallery),
            "headline": {m: round(v, 6) for m, v in self.headline().items()},
            "criteria": {name: c.to_dict() for name, c in self.criteria.items()},
            "timings_s": {m: round(v, 3) for m, v in self.timings.items()},
            "embedded_now": self.computed,
            "task_info": self.task.info,
        }


def evaluate_task(
    task: EvalTask,
    extractor: Extractor,
    k: int = 10,
    cache: EmbeddingCache | None = None,
    label: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    query_flip: bool = True,
) -> TaskResult:
    """Run ``task`` with ``extractor``: embed (cached), rank exactly, score every criterion.

    Query pictures are ranked as a catalogue ranks a search picture: with ``query_flip`` (the default,
    as :class:`lookalike.Catalog`), each product scores the better of its similarity to the picture and
    to the picture's mirror image. A task whose queries are its gallery ("more like this") uses the
    gallery's vectors."""
    cache = cache if cache is not None else EmbeddingCache()
    timings: dict[str, float] = {}
    computed: dict[str, int] = {}
    embedded: dict[str, np.ndarray] = {}
    for part, images in (("gallery", task.gallery), ("queries", task.queries)):
        if part == "queries" and images is task.gallery:
            embedded[part], timings["queries_embed"], computed[part] = embedded["gallery"], 0.0, 0
            continue
        t0 = time.perf_counter()
        report = functools.partial(progress, part) if progress is not None else None
        embedded[part], computed[part] = cache.embed(extractor, images, batch_size, workers, report)
        if part == "queries" and query_flip:
            report = functools.partial(progress, "mirrored") if progress is not None else None
            embedded["mirrored"], computed["mirrored"] = cache.embed(
                extractor, images, batch_size, workers, report, flip=True
            )
        timings[f"{part}_embed"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    top_idx, top_score = rank_exact(
        embedded["queries"], embedded["gallery"], k, task.exclude, mirrored=embedded.get("mirrored")
    )
    timings["rank"] = time.perf_counter() - t0
    results = {c.name: score_ranking(top_idx, c, task.query_groups, task.exclude, k) for c in task.criteria}
    return TaskResult(
        task=task,
        model=label or extractor.name,
        k=k,
        criteria=results,
        top_indices=top_idx,
        top_scores=top_score,
        timings=timings,
        computed=computed,
        model_info={
            **extractor.describe(),
            "cache_key": cache.key(extractor),
            "query_flip": query_flip and task.queries is not task.gallery,
        },
    )


def load_model(spec: str, **kwargs: Any) -> tuple[str, Extractor]:
    """Build an extractor from ``NAME`` or ``NAME@RESIZE`` (RESIZE overrides its resize mode for an
    experiment, e.g. ``efficientnet-lite0@squash``); returns (label, extractor)."""
    from lookalike.extractors import create_extractor

    name, sep, mode = spec.rpartition("@")
    if not sep or mode not in RESIZE_MODES:
        return spec, create_extractor(spec, **kwargs)
    extractor = create_extractor(name, **kwargs)
    if extractor.preprocess_cfg is None:
        from lookalike.errors import ExtractorNotFoundError

        raise ExtractorNotFoundError(f"{name!r} has no preprocessing to change")
    extractor.preprocess_cfg = replace(extractor.preprocess_cfg, resize_mode=mode)  # type: ignore[arg-type]
    return spec, extractor


def run_evaluation(
    tasks: Sequence[EvalTask],
    models: Sequence[str],
    k: int = 10,
    cache: EmbeddingCache | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: Callable[[str, str, str, int, int], None] | None = None,
    query_flip: bool = True,
) -> list[TaskResult]:
    """Every model on every task (model-major, so each model is loaded once); results in that order.

    ``progress(model, task, part, done, total)`` is called as images are embedded; ``query_flip``: see
    :func:`evaluate_task`.
    """
    cache = cache if cache is not None else EmbeddingCache()
    results = []
    for spec in models:
        label, extractor = load_model(spec)
        for task in tasks:
            report = None
            if progress is not None:
                report = functools.partial(progress, label, task.name)
            results.append(evaluate_task(task, extractor, k, cache, label, batch_size, workers, report, query_flip))
    return results
