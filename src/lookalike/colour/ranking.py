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
    "DEFAULT_KIND_WEIGHT",
    "KIND_VOTERS",
    "PHOTO_KIND_WEIGHT",
    "PREFERENCE_WEIGHT",
    "PRODUCT_COLOUR_WEIGHT",
    "agreement",
    "colour_kind_order",
    "kind_votes",
    "preference_distribution",
    "rerank_order",
]

#: Weight of a query picture's colour agreement against cosine similarity, chosen with
#: :data:`PHOTO_KIND_WEIGHT` on the training contributors' photos, their colours read by heads that had not seen
#: them (contributor-grouped cross-validation; docs/quality.md, "How the colour stage ranks").
DEFAULT_COLOUR_WEIGHT = 0.5
#: Weight of a "more like this" product's own colour (certain, so the kind matters more than for a photo):
#: chosen on catalogue products the model trained on (ids = 1 mod 5; grid in docs/quality.md), reported on the
#: test split.
PRODUCT_COLOUR_WEIGHT = 0.2
#: Weight when the shopper names the colour ("this, but in red"): the wish is certain, so it counts more.
PREFERENCE_WEIGHT = 0.5


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


#: Weight of the kind vote (see :func:`kind_votes`) for a product's or words' query (chosen with
#: :data:`PRODUCT_COLOUR_WEIGHT` on the catalogue's training products).
DEFAULT_KIND_WEIGHT = 0.2
#: Weight of the kind vote for a query with a picture: the largest type+colour on the training contributors'
#: photos whose fine type stays at least that of the similarity alone (docs/quality.md).
PHOTO_KIND_WEIGHT = 0.5
#: How many of the most similar candidates vote on the query's kind.
KIND_VOTERS = 20


def kind_votes(scores: np.ndarray, kinds: list[str | None], voters: int = KIND_VOTERS) -> np.ndarray:
    """For each candidate, the similarity-weighted share of the top ``voters`` candidates that are of its kind
    (its article type): what the nearest products agree the query is. A candidate of no known kind gets 0.

    Colour re-ranking pulls in products of the right colour; the vote keeps them of the kind most of the
    nearest products share (flip-flops stay with flip-flops)."""
    s = np.asarray(scores, dtype=np.float32)
    top = np.argsort(-s, kind="stable")[:voters]
    weights: dict[str, float] = {}
    for i in top:
        kind = kinds[i]
        if kind:
            weights[kind] = weights.get(kind, 0.0) + max(float(s[i]), 0.0)
    total = sum(weights.values())
    if total <= 0:
        return np.zeros(len(kinds), dtype=np.float32)
    return np.array([weights.get(k, 0.0) / total if k else 0.0 for k in kinds], dtype=np.float32)


def colour_kind_order(
    scores: np.ndarray,
    kinds: list[str | None],
    families: np.ndarray,
    query: np.ndarray,
    colour_weight: float,
    kind_weight: float,
    voters: int = KIND_VOTERS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The colour stage's arithmetic, shared by the catalogue and ``lookalike eval``: candidates ordered by
    ``score + kind_weight × kind vote`` (of the top ``voters``) ``+ colour_weight × agreement``; returns (order,
    the ordering keys in that order, each candidate's agreement in the incoming order)."""
    base = np.asarray(scores, dtype=np.float32)
    if kind_weight:
        base = base + np.float32(kind_weight) * kind_votes(base, kinds, voters)
    agree = agreement(query, families)
    order, keys = rerank_order(base, agree, colour_weight)
    return order, keys, agree
