"""The kind stage's arithmetic, as pure functions over candidates (used by the catalogue's kind stage and by
``lookalike eval``, so both rank alike).

A candidate's key becomes ``key + weight × P(query is of the candidate's kind)``, the probability coming from
the kind head (:mod:`lookalike.kind.model`) and not from the nearest products, so a photo of a dress whose
neighbours are mostly T-shirts still brings its dresses up. Then the first ``k`` keep room for every kind the
head finds likely (at least :attr:`KindPrior.spread_min`): each gets ``max(1, floor(P × k × spread_share))`` of
them, its best candidates, so a page hedges between jeans and trousers rather than showing ten of the wrong one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KIND_PREFERENCE_WEIGHT",
    "KIND_SPREAD_MIN",
    "KIND_SPREAD_SHARE",
    "KIND_WEIGHT",
    "KindPrior",
    "kind_bonus",
    "kind_order",
]

#: Weight of the kind head's probability against cosine similarity for a query with a picture (chosen on the
#: training contributors' photos, each read by a head that had not seen its contributor: docs/quality.md,
#: "The right kind").
KIND_WEIGHT = 1.0
#: A kind at least this likely keeps a place on the first page (the same choice).
KIND_SPREAD_MIN = 0.1
#: Its share of the page: ``P × k × KIND_SPREAD_SHARE`` places (at least one).
KIND_SPREAD_SHARE = 1.0
#: Weight of a kind the shopper chose (a chip): certain, so it outweighs any similarity.
KIND_PREFERENCE_WEIGHT = 2.0


@dataclass(frozen=True)
class KindPrior:
    """What a query looks like, over the catalogue's own kinds (``dist``: kind → probability, the kinds it does
    not name 0), and how the stage uses it. ``spread``: keep places for the likely kinds (off for a chosen kind)."""

    dist: Mapping[str, float] = field(default_factory=dict)
    weight: float = KIND_WEIGHT
    spread: bool = True
    spread_min: float = KIND_SPREAD_MIN
    spread_share: float = KIND_SPREAD_SHARE

    @classmethod
    def chosen(cls, kind: str) -> KindPrior:
        """The prior of a kind the shopper picked: all the mass on it, :data:`KIND_PREFERENCE_WEIGHT`, no spread."""
        return cls({kind: 1.0}, KIND_PREFERENCE_WEIGHT, spread=False)

    def ranked(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` likeliest kinds, likeliest first (ties by name)."""
        return sorted(self.dist.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def kind_bonus(prior: KindPrior, kinds: Sequence[str | None]) -> np.ndarray:
    """``weight × P(kind)`` for each candidate's kind (0 for a kind the prior does not name, or none)."""
    dist = prior.dist
    return np.array([prior.weight * dist.get(k, 0.0) if k else 0.0 for k in kinds], dtype=np.float32)


def kind_order(
    keys: np.ndarray, kinds: Sequence[str | None], prior: KindPrior, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(order, new keys in that order): the candidates (keys = what they were ordered by) best first under
    ``keys + kind_bonus``, the first ``k`` then holding each likely kind's quota of its best candidates (kept in
    key order among themselves); ties keep the incoming order."""
    new = np.asarray(keys, dtype=np.float32) + kind_bonus(prior, kinds)
    order = np.argsort(-new, kind="stable")
    if prior.spread and k > 0:
        order = _spread(order, kinds, prior, k)
    return order, new[order]


def _spread(order: np.ndarray, kinds: Sequence[str | None], prior: KindPrior, k: int) -> np.ndarray:
    likely = {kind: p for kind, p in prior.dist.items() if p >= prior.spread_min}
    if len(likely) < 2:
        return order
    quota = {kind: max(1, int(p * k * prior.spread_share)) for kind, p in likely.items()}
    reserved: list[int] = []
    for pos, i in enumerate(order.tolist()):
        left = quota.get(kinds[i] or "", 0)
        if left > 0:
            reserved.append(pos)
            quota[kinds[i] or ""] = left - 1
    taken = set(reserved[:k])
    fill = [pos for pos in range(len(order)) if pos not in taken][: max(0, k - len(taken))]
    first = sorted(taken.union(fill))
    chosen = set(first)
    rest = [pos for pos in range(len(order)) if pos not in chosen]
    return order[np.array(first + rest, dtype=np.int64)] if len(order) else order
