"""An exact catalogue picture finds its own product first (issue 24), and where the threshold of
:func:`lookalike.catalog.ranking.exact_first` lies.

:func:`exact_first_count`: seeded catalogue products searched with their own picture file (as a shopper's
screenshot of a product page would be), with the default stages and with the stages before ``exact_first``;
a product counts as found when it is the first hit or one of the identical pictures the first hit stands for.
:func:`self_similarities`: each such picture re-encoded (JPEG at quality 70, shrunk to 160 px, a PNG
screenshot at twice the size) against its stored vector, and the nearest *other* product's similarity
(byte-identical twins left out): the threshold goes between the two; and how many re-encoded pictures come first
at a few thresholds.

    python -m lookalike.evaluate.exact_pictures [DATASETS] [CACHE_DIR]
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.catalog.ranking import DEFAULT_STAGES, RankingStage, exact_first

__all__ = ["VARIANTS", "exact_first_count", "seeded", "self_similarities"]


def _jpeg(img: Image.Image, quality: int = 70) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _small(img: Image.Image) -> Image.Image:
    w, h = img.size
    return _jpeg(img.resize((160, max(1, round(160 * h / w))), Image.Resampling.BICUBIC), 90)


def _screenshot(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.resize((img.width * 2, img.height * 2), Image.Resampling.BILINEAR).save(buf, format="PNG")
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


#: How a shopper's copy of a catalogue picture may differ from the stored one.
VARIANTS = {"as stored": lambda img: img, "JPEG q70": _jpeg, "160 px": _small, "screenshot 2x PNG": _screenshot}


def seeded(n: int, total: int, seed: int = 0) -> list[int]:
    """``n`` distinct indices of ``total``, seeded."""
    return sorted(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False).tolist())


def exact_first_count(
    cat: Any, ids: Sequence[str], paths: Sequence[Path], stages: Sequence[RankingStage], change: Any = None
) -> int:
    """How many of the products ``ids`` a search with their picture file ``paths`` (``change``: the picture
    changed so, one of :data:`VARIANTS`) finds first with ``stages``."""
    from lookalike.imaging.decode import load_image

    old = cat.ranking_stages
    cat.ranking_stages = tuple(stages)
    try:
        found = 0
        for pid, path in zip(ids, paths, strict=True):
            top = cat.search(path if change is None else change(load_image(path)), k=1)[0]
            found += top.id == pid or pid in top.duplicates
        return found
    finally:
        cat.ranking_stages = old


def at_threshold(threshold: float) -> RankingStage:
    """:func:`exact_first` with another threshold (for measuring)."""

    def stage(ctx: Any, ranked: Any) -> Any:
        return exact_first(dataclasses.replace(ctx, exact_similarity=threshold), ranked)

    return stage


def self_similarities(cat: Any, ids: Sequence[str], paths: Sequence[Path]) -> dict[str, dict[str, float]]:
    """Per variant of :data:`VARIANTS`: the lowest and the 1st-percentile similarity of a picture to its own
    product, and the highest similarity to another product whose picture is not byte-identical."""
    from lookalike.imaging.decode import load_image

    keys = cat.backend.states(list(ids))
    out: dict[str, dict[str, float]] = {}
    for name, change in VARIANTS.items():
        own, other = [], []
        for pid, path in zip(ids, paths, strict=True):
            hits = cat.search(change(load_image(path)), k=5, colour_rank=False, collapse=False)
            sha = keys[pid].image_sha if pid in keys else None
            states = cat.backend.states([h.id for h in hits])
            mine = [h.score for h in hits if h.id == pid]
            own.append(mine[0] if mine else -1.0)
            twin = {i for i, st in states.items() if sha is not None and st.image_sha == sha}
            other.append(max((h.score for h in hits if h.id != pid and h.id not in twin), default=-1.0))
        out[name] = {
            "own lowest": float(np.min(own)),
            "own 1st percentile": float(np.percentile(own, 1)),
            "other highest": float(np.max(other)),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a measurement, run by hand
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.evaluate.feedback_task import _gallery, build_catalogue

    args = list(sys.argv[1:] if argv is None else argv)
    root = resolve_datasets_root(args[0] if args else None)
    cache = args[1] if len(args) > 1 else os.environ.get("LOOKALIKE_EVAL_CACHE")
    rows, paths, vecs = _gallery(root, cache, test_only=False)
    pick = seeded(300, len(rows))
    ids, files = [rows[i]["id"] for i in pick], [paths[i] for i in pick]
    before = tuple(s for s in DEFAULT_STAGES if s is not exact_first)
    with (
        tempfile.TemporaryDirectory(prefix="lookalike-exact-") as tmp,
        build_catalogue(Path(tmp) / "all", rows, paths, vecs) as cat,
    ):
        print(f"{len(ids)} seeded catalogue pictures, the product itself first:")
        print(f"  default stages: {exact_first_count(cat, ids, files, DEFAULT_STAGES)}")
        print(f"  without exact_first: {exact_first_count(cat, ids, files, before)}")
        cat.collapse_duplicates = False
        print(f"  colour ranking off: {exact_first_count(cat, ids, files, (before[0],))}")
        cat.collapse_duplicates = True
        for t in (0.995, 0.98, 0.97):
            stages = (*before[:-1], at_threshold(t), before[-1])
            n = exact_first_count(cat, ids, files, stages, VARIANTS["JPEG q70"])
            print(f"  re-encoded as JPEG q70, first with a threshold of {t}: {n}", flush=True)
        for name, row in self_similarities(cat, ids, files).items():
            print(f"  {name:20s} " + "  ".join(f"{k} {v:.5f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
