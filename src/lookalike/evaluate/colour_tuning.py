"""Choosing a photo's colour-stage weights on the training contributors' photos without flattering colour.

The colour head trains on the labelled photos of the training contributors, so read by the shipped head their
colours are nearly always right (family accuracy 0.87 against 0.59 on held-out contributors) and any sweep on them
over-weights colour. Here each training contributor's photos are read by a head trained on the catalogue and the
*other* contributors' photos (:func:`cross_validated_colours`: folds by contributor), then every (colour weight,
kind-vote weight, voters) setting ranks them (:func:`sweep`), and :func:`choose` takes the largest type+colour
whose fine type is at least that of the similarity alone (issue 12: the fine type must rise with the colour).

    python -m lookalike.evaluate.colour_tuning [DATASETS] [CACHE_DIR]

prints the table of docs/quality.md ("How the colour stage ranks"), the held-out contributors beside it (not used
to choose).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.colour.families import FAMILIES
from lookalike.colour.model import ColourModel, default_colour_model
from lookalike.evaluate.cache import EmbeddingCache
from lookalike.evaluate.colour_metrics import ColourScores
from lookalike.evaluate.colour_task import (
    ColourTask,
    evaluate_colour_task,
    photo_colour_rows,
    photo_colour_task,
    split_photo_contributors,
)
from lookalike.extractors import Extractor

__all__ = ["Setting", "choose", "contributor_folds", "cross_validated_colours", "sweep"]

GRID = tuple(
    (colour, kind, voters)
    for voters in (10, 20, 40)
    for colour in (0.2, 0.3, 0.4, 0.5)
    for kind in (0.1, 0.2, 0.3, 0.5)
)


@dataclass(frozen=True)
class Setting:
    """One point of the sweep and how it scored on the training contributors' photos."""

    colour: float
    kind: float
    voters: int
    type_colour: float
    fine_type: float


def contributor_folds(senders: Sequence[str], folds: int = 5) -> np.ndarray:
    """Fold of each photo (0..folds-1): contributors in sorted order dealt round, so a contributor's photos share
    a fold."""
    ordered = sorted(set(senders))
    fold_of = {s: i % folds for i, s in enumerate(ordered)}
    return np.array([fold_of[s] for s in senders], dtype=np.int64)


def choose(settings: Iterable[Setting], base_fine_type: float) -> Setting:
    """The setting of largest type+colour among those whose fine type is at least ``base_fine_type`` (ties: the
    first); if none keeps it, the one of largest fine type."""
    settings = list(settings)
    keeping = [s for s in settings if s.fine_type >= base_fine_type]
    if not keeping:
        return max(settings, key=lambda s: s.fine_type)
    return max(keeping, key=lambda s: s.type_colour)


def cross_validated_colours(
    cat_x: np.ndarray,
    cat_y: np.ndarray,
    photo_x: np.ndarray,
    photo_y: np.ndarray,
    folds: np.ndarray,
    photo_weight: float = 20.0,
) -> np.ndarray:
    """(photos, 12) colour distributions, each fold's photos read by a head trained (as ``lookalike
    train-colour`` trains) on the catalogue features and the other folds' photos."""
    from lookalike.training.colour import fit_softmax

    cfg = default_colour_model().cfg
    out = np.zeros((len(photo_y), len(FAMILIES)), dtype=np.float32)
    for f in np.unique(folds):
        train = folds != f
        x = np.concatenate([cat_x, photo_x[train]])
        y = np.concatenate([cat_y, photo_y[train]])
        w = np.concatenate([np.ones(len(cat_y)), np.full(int(train.sum()), photo_weight)])
        weights, bias = fit_softmax(x, y, w)
        out[~train] = ColourModel(weights, bias, cfg).probabilities(photo_x[~train])
    return out


def _subset(task: ColourTask, keep: Sequence[int], name: str) -> ColourTask:
    return dataclasses.replace(
        task,
        name=name,
        queries=task.queries.subset(list(keep)),
        query_types=tuple(task.query_types[i] for i in keep),
        query_families=tuple(task.query_families[i] for i in keep),
        query_labels=tuple(task.query_labels[i] for i in keep),
        exclude=tuple(task.exclude[i] for i in keep),
    )


def sweep(
    task: ColourTask,
    colours: np.ndarray,
    extractor: Extractor,
    cache: EmbeddingCache,
    grid: Iterable[tuple[float, float, int]] = GRID,
) -> list[tuple[Setting, ColourScores]]:
    """Every (colour weight, kind weight, voters) of ``grid`` on ``task`` with the query ``colours`` (one row per
    query, in order)."""
    by_path = {str(p): colours[i] for i, p in enumerate(task.queries.paths)}
    out = []
    for colour, kind, voters in grid:
        s = evaluate_colour_task(
            task, extractor, lambda p: by_path[str(p)], cache=cache, weight=colour, kind_weight=kind, voters=voters
        ).scores
        out.append((Setting(colour, kind, voters, s.type_colour, s.fine_type), s))
    return out


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a measurement, run by hand
    """Print the sweep on the training contributors (cross-validated colours) and the held-out contributors."""
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.extractors import create_extractor
    from lookalike.garment import default_segmenter
    from lookalike.imaging.decode import load_image
    from lookalike.training.colour import colour_training_data

    args = list(sys.argv[1:] if argv is None else argv)
    root = resolve_datasets_root(args[0] if args else None)
    cache = EmbeddingCache(args[1] if len(args) > 1 else os.environ.get("LOOKALIKE_EVAL_CACHE"))
    extractor = create_extractor("lookalike-fashion")
    head = default_colour_model()
    data = colour_training_data(Path(root), head.cfg, default_segmenter().predict)
    trained = split_photo_contributors(root, 0)
    rows = photo_colour_rows(root)
    dev_i = [i for i, r in enumerate(rows) if r["sender_id"] in trained]
    dev = _subset(photo_colour_task(root, heldout_seed=None), dev_i, "photo-colour-dev")
    folds = contributor_folds([rows[i]["sender_id"] for i in dev_i])
    dev_colours = cross_validated_colours(data["cat_x"], data["cat_y"], data["photo_x"], data["photo_y"], folds)
    held = photo_colour_task(root, heldout_seed=0)
    from lookalike.colour.detect import default_colour_detector

    detector = default_colour_detector()
    held_colours = np.stack([detector.detect(load_image(p)).probabilities for p in held.queries.paths])
    by_path = {str(p): dev_colours[i] for i, p in enumerate(dev.queries.paths)}
    base = evaluate_colour_task(dev, extractor, lambda p: by_path[str(p)], cache=cache).without_colour
    held_runs = {(s.colour, s.kind, s.voters): h for s, h in sweep(held, held_colours, extractor, cache)}
    runs = sweep(dev, dev_colours, extractor, cache)
    print(f"similarity alone (dev): type+colour {base.type_colour:.3f} fine type {base.fine_type:.3f}")
    print("colour kind voters | dev type+colour fine type | held-out type+colour fine type")
    for s, _ in runs:
        h = held_runs[(s.colour, s.kind, s.voters)]
        print(
            f"{s.colour:.1f} {s.kind:.1f} {s.voters:2d} | {s.type_colour:.3f} {s.fine_type:.3f} | "
            f"{h.type_colour:.3f} {h.fine_type:.3f}"
        )
    best = choose([s for s, _ in runs], base.fine_type)
    print(f"chosen: colour {best.colour} kind {best.kind} voters {best.voters}")


if __name__ == "__main__":  # pragma: no cover
    main()
