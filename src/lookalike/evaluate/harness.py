"""Embed a task's queries and gallery with an extractor, rank exactly, and score the ranking.

Embedding and its cache (per extractor and per image, so the catalogue is embedded once for all tasks)
live in :mod:`~lookalike.evaluate.cache`; exact ranking (ties broken by gallery order, so the numbers
are reproducible) and scoring in :mod:`~lookalike.evaluate.ranking`; their public names are importable
from here too. The tasks come from :mod:`~lookalike.evaluate.datasets`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lookalike.evaluate.cache import EmbeddingCache, embed_paths, extractor_cache_key
from lookalike.evaluate.datasets import EvalTask
from lookalike.evaluate.ranking import CriterionResult, rank_exact, score_ranking
from lookalike.extractors.base import Extractor

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


# --- running tasks ------------------------------------------------------------------------------------
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
