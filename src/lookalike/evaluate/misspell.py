"""Misspelt words (EVALUATION.md task 4 with typos): the phrases and titles of the words task, each with one
letter dropped from, or two neighbouring letters swapped in, its longest word, searched through the
catalogue with and without the correction of :mod:`lookalike.catalog.spelling`.

``python scripts/eval_misspelt.py`` runs it (docs/quality.md, "Misspelt words"). The catalogues and the scoring
are those of :mod:`lookalike.evaluate.text_eval`; only the query texts change.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from lookalike.evaluate.text_eval import (
    build_catalogue,
    colour_cache_name,
    predicted_families,
    products_of,
    score_catalogue,
)
from lookalike.evaluate.text_task import test_split, test_split_image_vectors

__all__ = ["CONDITIONS", "misspell", "run_misspelt_eval"]

_WORD = re.compile(r"[^\W\d_]+")
#: (name, misspelt, spelling on) of each run.
CONDITIONS: tuple[tuple[str, bool, bool], ...] = (
    ("as spelt", False, True),
    ("as spelt, no correction", False, False),
    ("misspelt, no correction", True, False),
    ("misspelt, corrected", True, True),
)


def misspell(text: str, rng: random.Random) -> str:
    """``text`` with one typo in its longest word (the first of equals; words of letters only): a letter
    dropped or, half of the time, two different neighbouring letters swapped; unchanged when its longest word
    has fewer than three letters."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    m = max(words, key=lambda w: len(w.group()))
    word = m.group()
    if len(word) < 3:
        return text
    swaps = [i for i in range(len(word) - 1) if word[i].casefold() != word[i + 1].casefold()]
    if swaps and rng.random() < 0.5:
        i = rng.choice(swaps)
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    else:
        i = rng.randrange(len(word))
        typo = word[:i] + word[i + 1 :]
    return text[: m.start()] + typo + text[m.end() :]


def run_misspelt_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    typo_seed: int = 0,
    k: int = 10,
    every: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Task 4 on both catalogues (with text, pictures only) under each of :data:`CONDITIONS`:
    ``{"<catalogue>: <condition>": {metric: value}}``. ``seed``: the phrases' wording; ``typo_seed``: the typos
    (one ``random.Random`` per query text, seeded by ``typo_seed`` and the text, so a phrase's typo does not
    depend on which other phrases are run)."""
    rows, images = test_split(root)
    say = progress or (lambda _msg: None)
    say("image vectors")
    vecs = test_split_image_vectors(images, cache_root)
    cache = Path(cache_root) if cache_root is not None else None
    say("predicted colours")
    fams = predicted_families(list(images.paths), None if cache is None else cache / colour_cache_name())

    def typo(text: str) -> str:
        return misspell(text, random.Random(f"{typo_seed}:{text}"))

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-misspelt-") as tmp:
        for name, with_text in (("with text", True), ("pictures only", False)):
            with build_catalogue(Path(tmp) / name.replace(" ", "-"), products_of(rows, with_text, fams), vecs) as cat:
                for cond, misspelt, spelling in CONDITIONS:
                    say(f"{name}: {cond}")
                    cat.spelling = spelling
                    out[f"{name}: {cond}"] = score_catalogue(
                        cat, rows, seed, k, every=every, transform=typo if misspelt else None
                    )
    return out
