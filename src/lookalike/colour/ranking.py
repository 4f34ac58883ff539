"""Colour-aware re-ranking, as pure functions over candidate scores (used by the catalogue's colour ranking
stage and by ``lookalike eval``, so both rank alike).

A candidate's new score is ``similarity + weight × agreement``, where ``agreement`` is the probability the
query's colour distribution gives the candidate's family (1 for a stated colour preference). A candidate
whose family is unknown gets agreement 0.
"""

from __future__ import annotations

import numpy as np

from lookalike.colour.families import FAMILIES, family_index

__all__ = [
    "DEFAULT_COLOUR_WEIGHT",
    "PREFERENCE_WEIGHT",
    "agreement",
    "preference_distribution",
    "rerank_order",
]

#: Weight of colour agreement against cosine similarity, chosen on the training contributors' photos
#: (docs/quality.md, "Colour-aware ranking").
DEFAULT_COLOUR_WEIGHT = 0.15
#: Weight when the shopper names the colour ("this, but in red"): the wish is certain, so it counts more.
PREFERENCE_WEIGHT = 0.3


def preference_distribution(colour: str) -> np.ndarray:
    """The distribution of a stated colour: all mass on its family. Raises ``ValueError`` for an unknown name."""
    i = family_index(colour)
    if i < 0:
        raise ValueError(f"unknown colour {colour!r}; use a colour name or one of: {', '.join(FAMILIES)}")
    out = np.zeros(len(FAMILIES), dtype=np.float32)
    out[i] = 1.0
    return out


def agreement(query: np.ndarray, families: np.ndarray) -> np.ndarray:
    """How well each candidate's family (index into :data:`FAMILIES`, -1 unknown) fits the query's
    distribution ``query`` (12,): ``query[family]``, 0 for unknown."""
    fam = np.asarray(families, dtype=np.int64)
    q = np.asarray(query, dtype=np.float32)
    return np.where(fam >= 0, q[np.maximum(fam, 0)], 0.0).astype(np.float32)


def rerank_order(scores: np.ndarray, agree: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(order, new scores): positions of the candidates best first under ``scores + weight * agree``; ties
    keep the incoming order."""
    new = np.asarray(scores, dtype=np.float32) + np.float32(weight) * np.asarray(agree, dtype=np.float32)
    order = np.argsort(-new, kind="stable")
    return order, new[order]
