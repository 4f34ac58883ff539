"""A kind's name, as a shop writes it, to a key two names share when they mean one kind of product.

The kind head speaks the article types it was trained on ("Tshirts", "Dresses", "Track Pants"); a shop's
catalogue writes its own ("T-Shirt", "Dress", "track pants", "Tees"). :func:`kind_key` folds case, drops what is
not a letter, reads plurals as their singular and maps a few common synonyms, so
:func:`catalogue_distribution` can give each of the catalogue's own kinds the head's probability.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["catalogue_distribution", "kind_key", "matching_kind"]

_LETTERS = re.compile(r"[^a-z]+")
#: Other names shops use for the head's kinds (keys as :func:`kind_key` leaves them, before the synonym).
_SYNONYMS = {
    "tee": "tshirt",
    "teeshirt": "tshirt",
    "tshirtandtop": "tshirt",
    "pant": "trouser",
    "slack": "trouser",
    "chino": "trouser",
    "denim": "jean",
    "jogger": "trackpant",
    "sweatpant": "trackpant",
    "trainer": "sportsshoe",
    "sneaker": "casualshoe",
    "hoody": "sweatshirt",
    "hoodie": "sweatshirt",
    "jumper": "sweater",
    "pullover": "sweater",
    "cardigan": "sweater",
    "coat": "jacket",
    "blouse": "top",
    "gown": "dress",
    "sandal": "sandal",
    "flipflop": "flipflop",
    "cap": "cap",
    "legging": "legging",
}


def kind_key(name: str) -> str:
    """The key of a kind's name: letters only, lower case, singular ("Dresses" → "dress", "T-Shirts" → "tshirt",
    "Track Pants" → "trackpant"), a common synonym read as the head's name ("Tees" → "tshirt")."""
    word = _LETTERS.sub("", name.casefold())
    if word.endswith(("sses", "ches", "shes", "xes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return _SYNONYMS.get(word, word)


def catalogue_distribution(classes: Sequence[str], probabilities: np.ndarray, kinds: Sequence[str]) -> dict[str, float]:
    """The head's ``probabilities`` over its ``classes`` given to the catalogue's own ``kinds`` (each kind the
    summed probability of the classes with its key), renormalised over the kinds the catalogue has; empty when
    none of the catalogue's kinds is one the head knows."""
    by_key: dict[str, float] = {}
    for name, p in zip(classes, np.asarray(probabilities, dtype=np.float64).tolist(), strict=True):
        key = kind_key(name)
        by_key[key] = by_key.get(key, 0.0) + p
    out = {kind: by_key[kind_key(kind)] for kind in kinds if kind and kind_key(kind) in by_key}
    total = sum(out.values())
    if total <= 0:
        return {}
    return {kind: p / total for kind, p in out.items()}


def matching_kind(name: str, kinds: Mapping[str, float] | Sequence[str]) -> str | None:
    """The catalogue kind among ``kinds`` that ``name`` names (same key), or None."""
    key = kind_key(name)
    return next((k for k in kinds if kind_key(k) == key), None)
