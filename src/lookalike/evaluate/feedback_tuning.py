"""Choosing the feedback stage's weights on the training contributors' photos (EVALUATION.md task 6).

Every setting of :data:`GRID` (the shipped :class:`~lookalike.catalog.feedback_rank.FeedbackWeights` with one
weight changed) runs the simulated shopper of :mod:`lookalike.evaluate.feedback_task` on the photos of the
contributors the embedding trained on; round-0 pages are searched once and shared. The colour head trained on
those photos too, so their colours are read as in :mod:`lookalike.evaluate.colour_tuning`: each by a head that
had not seen its contributor (:func:`cross_validated_detector`). The held-out contributors are never used to
choose.

    python -m lookalike.evaluate.feedback_tuning [DATASETS] [CACHE_DIR]

prints one line per setting (type+colour mP@10 in rounds 0, 1, 2; the same for the pages with no right product in
round 0): the table of docs/quality.md, "Feedback".
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lookalike.catalog.feedback_rank import FeedbackWeights
from lookalike.evaluate.feedback_task import FeedbackScores, Query, build_catalogue, photo_queries, simulate

__all__ = ["GRID", "cross_validated_detector", "sweep"]

_BASE = FeedbackWeights()
#: The settings tried: the shipped weights, then each weight moved on its own (and the two strategies).
GRID: tuple[FeedbackWeights, ...] = (
    _BASE,
    replace(_BASE, strategy="best"),
    *(replace(_BASE, **{name: value}) for name, values in (
        ("liked", (0.5, 2.0)),
        ("disliked", (0.0, 0.15, 0.6)),
        ("liked_kind", (0.0, 0.4)),
        ("disliked_kind", (0.1, 0.4)),
        ("disliked_colour", (0.0, 0.4)),
        ("colour_shift", (0.0, 0.5)),
        ("liked_pair", (0.0, 1.0)),
        ("disliked_pair", (0.0, 1.0)),
        ("liked_colour", (0.5,)),
        ("kind_vote", (None, 0.0)),
        ("saturation", (5, 50)),
        ("judged", (0.0,)),
        ("candidates", (400,)),
        ("explore", (100,)),
        ("spread", (2, 5)),
    ) for value in values),
)  # fmt: skip


def sweep(
    cat: Any, queries: Sequence[Query], grid: Sequence[FeedbackWeights] = GRID, rounds: int = 2, k: int = 10
) -> list[tuple[FeedbackWeights, FeedbackScores]]:
    """Each setting of ``grid`` on ``queries`` through ``cat`` (its ``feedback_weights`` set in turn)."""
    first: dict[str, list[Any]] = {}
    out = []
    for w in grid:
        cat.feedback_weights = w
        out.append((w, simulate(cat, queries, rounds, k, first=first)))
    cat.feedback_weights = _BASE
    return out


class _KnownColours:
    """A colour detector that answers from ``known`` (picture key → estimate) and asks ``inner`` otherwise."""

    def __init__(self, inner: Any, known: dict[bytes, Any]) -> None:
        self.inner, self.known = inner, known

    def detect(self, image: Any) -> Any:
        found = self.known.get(_key(image))
        return found if found is not None else self.inner.detect(image)


def _key(image: Any) -> bytes:
    import hashlib

    return hashlib.blake2b(repr((image.size, image.mode)).encode() + image.tobytes(), digest_size=16).digest()


def cross_validated_detector(cat: Any, root: Path, queries: Sequence[Query]) -> Any:
    """A colour detector for ``cat`` that reads each training contributor's photo among ``queries`` with a head
    trained on the catalogue and the *other* contributors' photos (5 folds by contributor), as
    :mod:`lookalike.evaluate.colour_tuning` does; other pictures as the shipped detector reads them."""
    from lookalike.catalog.query import query_image
    from lookalike.colour.detect import ColourEstimate
    from lookalike.colour.model import default_colour_model
    from lookalike.evaluate.colour_task import photo_colour_rows, split_photo_contributors
    from lookalike.evaluate.colour_tuning import contributor_folds, cross_validated_colours
    from lookalike.garment import default_segmenter
    from lookalike.training.colour import colour_training_data

    data = colour_training_data(root, default_colour_model().cfg, default_segmenter().predict)
    trained = split_photo_contributors(root, 0)
    rows = [r for r in photo_colour_rows(root) if r["sender_id"] in trained]  # the order of data["photo_x"]
    folds = contributor_folds([r["sender_id"] for r in rows])
    colours = cross_validated_colours(data["cat_x"], data["cat_y"], data["photo_x"], data["photo_y"], folds)
    by_path = {str(r["path"]): colours[i] for i, r in enumerate(rows)}
    known = {}
    for q in queries:
        if q.path is not None and str(q.path) in by_path:
            known[_key(query_image(cat, str(q.path)))] = ColourEstimate(by_path[str(q.path)])
    return _KnownColours(cat.colour_detector, known)


def _changed(w: FeedbackWeights) -> str:
    diff = [f"{name}={getattr(w, name)}" for name in w.__dataclass_fields__ if getattr(w, name) != getattr(_BASE, name)]
    return ", ".join(diff) or "shipped"


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a measurement, run by hand
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.evaluate.feedback_task import _gallery

    args = list(sys.argv[1:] if argv is None else argv)
    root = resolve_datasets_root(args[0] if args else None)
    cache = args[1] if len(args) > 1 else os.environ.get("LOOKALIKE_EVAL_CACHE")
    rows, paths, vecs = _gallery(root, cache, test_only=False)
    queries = photo_queries(root, "training")
    with (
        tempfile.TemporaryDirectory(prefix="lookalike-feedback-tuning-") as tmp,
        build_catalogue(Path(tmp) / "all", rows, paths, vecs) as cat,
    ):
        cat._colour_detector = cross_validated_detector(cat, root, queries)
        print(f"{len(queries)} photos of training contributors (colours cross-validated)")
        for w, s in sweep(cat, queries):
            rounds = " ".join(f"{x:.3f}" for x in s.rounds)
            hard = " ".join(f"{x:.3f}" for x in s.none_first_rounds)
            print(f"{_changed(w):40s} | {rounds} | none in round 0 ({s.none_first}): {hard}", flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
