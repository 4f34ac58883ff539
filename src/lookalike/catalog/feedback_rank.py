"""The arithmetic of feedback ("more like these, less like those"), as pure functions over vectors and labels.

A shopper likes some products and dislikes others. :class:`Judgements` holds what they share: their vectors
(every picture), the share of each kind (article type) and of each colour family among the liked, the same for the
disliked counted over :attr:`FeedbackWeights.saturation` (so judgements accumulating over rounds do not dilute),
and the (kind, family) pairs of each side. :func:`feedback_keys` scores candidates with it:

``key = similarity + liked_kind × share of liked of its kind − disliked_kind × share of disliked of its kind
(a kind no liked product has) − disliked_colour × share of disliked of its family (a family no liked product
has) + liked_pair × (a liked product has its kind and family) − disliked_pair × (a disliked one has them, no
liked one) + judged × (liked) − judged × (disliked)`` (a disliked candidate gets only the last term)

where ``similarity`` is, for the ``average`` strategy (Rocchio, Qdrant's ``average_vector``), the cosine to
``norm(view + liked × mean liked − disliked × mean disliked)`` (the best view, the candidate's best picture),
and for ``best`` (Qdrant's ``best_score``) the best cosine to the views and every liked picture when it beats
the best cosine to a disliked picture, else minus that one squared. The stage adds the key to what the colour stage
gave (colour agreement and kind vote) less the similarity to the query; the liked products' agreed colour family
becomes the colour preference (:func:`agreed_family`), else the disliked families leave the query's colour
(:attr:`FeedbackWeights.colour_shift`). Weights: docs/quality.md, "Feedback" (chosen on the training contributors'
photos, their colours cross-validated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.colour.families import FAMILIES

__all__ = [
    "STRATEGIES",
    "FeedbackQuery",
    "FeedbackWeights",
    "Judgements",
    "agreed_family",
    "best_by_owner",
    "family_shares",
    "feedback_keys",
    "kind_pairs",
    "kind_shares",
    "product_means",
    "rocchio",
    "spread",
]

#: How a candidate's similarity to the query and the judged products is measured.
STRATEGIES = ("average", "best")


@dataclass(frozen=True)
class FeedbackWeights:
    """The weights of the feedback stage (defaults: chosen on the training contributors' photos)."""

    strategy: str = "average"
    #: Rocchio: the mean liked vector added to each view, the mean disliked vector taken away, at these weights.
    liked: float = 1.0
    disliked: float = 0.3
    #: A candidate of a kind the liked products have, up by this × their share of that kind.
    liked_kind: float = 0.2
    #: A candidate of a kind the disliked have (and no liked one), down by this × their share of that kind.
    disliked_kind: float = 0.2
    #: A candidate of a colour family the disliked have (and no liked one), down by this × their share of it.
    disliked_colour: float = 0.2
    #: A candidate of the very kind and colour family of a liked product up by this; of a disliked product's
    #: (and no liked one's) down by ``disliked_pair``: what the shopper judged is the kind in that colour.
    liked_pair: float = 0.5
    disliked_pair: float = 0.5
    #: With no agreed liked colour: the query's colour loses this × the share of the disliked products of each
    #: family (that no liked one has), the rest made whole again (look for what the disliked are not).
    colour_shift: float = 1.0
    #: The colour preference's weight when the liked products agree on a colour family.
    liked_colour: float = 1.0
    #: The share of the liked products (with a known family) that must share a family for it to count as agreed.
    agree: float = 0.5
    #: Nothing liked yet: after the first ``spread_keep`` × k hits, at most this many of one kind in one colour family
    #: before the others have had their turn (a page of several kinds and colours is likelier to hold one the
    #: shopper likes); 0: off.
    spread: int = 0
    spread_keep: float = 0.0
    #: The colour stage's kind vote for a feedback query (None: the query's own weight): the vote of the products
    #: nearest the query picture, which the disliked may have been.
    kind_vote: float | None = 0.2
    #: A disliked kind or colour family counts fully once this many disliked products have it (fewer: that
    #: share of it), however many judgements accumulate over the rounds.
    saturation: int = 20
    #: The judged products themselves: liked ones up (they come back first), disliked ones down (below every
    #: product not judged: more than the colour stage can add).
    judged: float = 2.0
    #: How many candidates the stage ranks (the search's depth for a feedback query).
    candidates: int = 200
    #: Explore what the disliked are not: this many more candidates, the nearest of the kinds no disliked product
    #: has (or a liked one has too); 0: none.
    explore: int = 0


@dataclass(frozen=True)
class Judgements:
    """What the liked and disliked products are: every picture's vector (``*_owner``: the product of each row,
    an index into ``*_ids``), and the share of each kind and colour family among each side."""

    liked_ids: tuple[str, ...]
    disliked_ids: tuple[str, ...]
    liked: np.ndarray
    liked_owner: np.ndarray
    disliked: np.ndarray
    disliked_owner: np.ndarray
    liked_kinds: dict[str, float] = field(default_factory=dict)
    disliked_kinds: dict[str, float] = field(default_factory=dict)
    liked_families: np.ndarray = field(default_factory=lambda: np.zeros(len(FAMILIES), dtype=np.float32))
    disliked_families: np.ndarray = field(default_factory=lambda: np.zeros(len(FAMILIES), dtype=np.float32))
    #: The (casefolded kind, family index) pairs of the liked and of the disliked products (both known).
    liked_pairs: frozenset[tuple[str, int]] = frozenset()
    disliked_pairs: frozenset[tuple[str, int]] = frozenset()


def kind_pairs(kinds: Sequence[str | None], families: Sequence[int]) -> frozenset[tuple[str, int]]:
    """The (casefolded kind, family) pairs of products whose kind and family are both known."""
    return frozenset((k.casefold(), int(f)) for k, f in zip(kinds, families, strict=True) if k and f >= 0)


def kind_shares(kinds: Sequence[str | None], per: int | None = None) -> dict[str, float]:
    """The share of each kind among ``kinds`` (casefolded; an unknown kind counts in the total only); ``per``:
    the count over ``per`` instead, at most 1 (judgements that accumulate over rounds do not dilute)."""
    if not kinds:
        return {}
    total = per or len(kinds)
    out: dict[str, float] = {}
    for kind in kinds:
        if kind:
            out[kind.casefold()] = min(1.0, out.get(kind.casefold(), 0.0) + 1.0 / total)
    return out


def family_shares(families: Sequence[int], per: int | None = None) -> np.ndarray:
    """(12,): the share of each colour family among ``families`` (indices, -1 unknown: in the total only);
    ``per``: the count over ``per`` instead, at most 1."""
    out = np.zeros(len(FAMILIES), dtype=np.float32)
    for fam in families:
        if fam >= 0:
            out[fam] += 1.0
    return np.minimum(out / max(per or len(families), 1), 1.0).astype(np.float32)


def agreed_family(shares: np.ndarray, agree: float) -> int:
    """The family at least ``agree`` of the products with a known family share (-1: none, or no known family)."""
    known = float(shares.sum())
    if known <= 0:
        return -1
    best = int(np.argmax(shares))
    return best if shares[best] / known >= agree else -1


def product_means(vectors: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """(n, dim): each product's pictures averaged and normalised (a product with no row: zeros)."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0 or not len(vectors):
        return out
    np.add.at(out, owner, vectors)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def rocchio(
    views: np.ndarray | None,
    liked_mean: np.ndarray | None,
    disliked_mean: np.ndarray | None,
    liked: float,
    disliked: float,
) -> np.ndarray:
    """(m, dim) normalised: each view (or, with no views, nothing) ``+ liked × liked_mean − disliked ×
    disliked_mean``; the means are (dim,) or None."""
    parts = []
    if liked_mean is not None:
        parts.append(np.float32(liked) * liked_mean)
    if disliked_mean is not None:
        parts.append(-np.float32(disliked) * disliked_mean)
    shift = np.sum(parts, axis=0) if parts else None
    if views is None or not len(views):
        if shift is None:
            raise ValueError("a feedback query needs a query or a liked product")
        q = np.asarray(shift, dtype=np.float32)[None, :]
    else:
        q = np.asarray(views, dtype=np.float32) + (0.0 if shift is None else shift[None, :])
    return (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def spread(
    order: Sequence[int], kinds: Sequence[str | None], families: Sequence[int], cap: int, keep: int = 0
) -> list[int]:
    """``order`` (candidate positions, best first) with its first ``keep`` as they are, then at most ``cap``
    candidates of one (kind, family) (counting the kept ones) before every candidate has had its turn: the ones
    over the cap keep their order after the others."""
    seen: dict[tuple[str | None, int], int] = {}
    first, later = list(order[:keep]), []
    for i in first:
        pair = (kinds[i].casefold() if kinds[i] else None, int(families[i]))
        seen[pair] = seen.get(pair, 0) + 1
    for i in order[keep:]:
        pair = (kinds[i].casefold() if kinds[i] else None, int(families[i]))
        seen[pair] = seen.get(pair, 0) + 1
        (first if seen[pair] <= cap else later).append(i)
    return first + later


def best_by_owner(sims: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(best similarity per product, the row of it): ``sims`` (rows,) of pictures owned by ``owner`` (rows,)."""
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, owner, sims.astype(np.float32))
    arg = np.zeros(n, dtype=np.int64)
    hit = sims >= best[owner]
    rows = np.flatnonzero(hit)[::-1]  # the first row of the best wins: written last
    arg[owner[rows]] = rows
    return best, arg


def _mean_of(vectors: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray | None:
    if n == 0:
        return None
    means = product_means(vectors, owner, n)
    return means.mean(axis=0)


def feedback_keys(
    pictures: np.ndarray,
    owner: np.ndarray,
    views: np.ndarray | None,
    judged: Judgements,
    weights: FeedbackWeights,
    kinds: Sequence[str | None],
    families: np.ndarray,
    liked: np.ndarray,
    disliked: np.ndarray,
) -> np.ndarray:
    """The feedback key of each of ``n = len(kinds)`` candidates: ``pictures`` (rows, dim) are their pictures'
    vectors (``owner``: the candidate of each row), ``views`` the query's vectors (None: feedback alone),
    ``families`` their colour families (-1 unknown), ``liked``/``disliked`` (n,) bool: judged themselves."""
    n = len(kinds)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    n_liked, n_disliked = len(judged.liked_ids), len(judged.disliked_ids)
    if weights.strategy == "best":
        positive = [v for v in (views, judged.liked) if v is not None and len(v)]
        pos = np.concatenate(positive) if positive else np.zeros((0, pictures.shape[1]), dtype=np.float32)
        to_pos = (pictures @ pos.T).max(axis=1) if len(pos) else np.full(len(owner), -1.0, dtype=np.float32)
        best_pos, _ = best_by_owner(to_pos, owner, n)
        if len(judged.disliked):
            best_neg, _ = best_by_owner((pictures @ judged.disliked.T).max(axis=1), owner, n)
            sim = np.where(best_pos >= best_neg, best_pos, -(best_neg**2))
        else:
            sim = best_pos
    elif weights.strategy == "average":
        liked_mean = _mean_of(judged.liked, judged.liked_owner, n_liked)
        disliked_mean = _mean_of(judged.disliked, judged.disliked_owner, n_disliked)
        query = rocchio(views, liked_mean, disliked_mean, weights.liked, weights.disliked)
        sim, _ = best_by_owner((pictures @ query.T).max(axis=1), owner, n)
    else:
        raise ValueError(f"unknown feedback strategy {weights.strategy!r}; use one of {', '.join(STRATEGIES)}")
    keys = sim.astype(np.float32)
    liked_fams = judged.liked_families > 0
    for i, kind in enumerate(kinds):
        if disliked[i]:
            continue  # a disliked product: none of what it shares with the liked ones counts for it
        k = kind.casefold() if kind else None
        if k is not None:
            keys[i] += weights.liked_kind * judged.liked_kinds.get(k, 0.0)
            if k not in judged.liked_kinds:
                keys[i] -= weights.disliked_kind * judged.disliked_kinds.get(k, 0.0)
        fam = int(families[i])
        if fam >= 0 and not liked_fams[fam]:
            keys[i] -= weights.disliked_colour * float(judged.disliked_families[fam])
        if k is not None and fam >= 0:
            pair = (k, fam)
            if pair in judged.liked_pairs:
                keys[i] += weights.liked_pair
            elif pair in judged.disliked_pairs:
                keys[i] -= weights.disliked_pair
    keys += np.float32(weights.judged) * (liked.astype(np.float32) - disliked.astype(np.float32))
    return keys


@dataclass
class FeedbackQuery:
    """A query's feedback as the ranking stage uses it: the judgements, the weights, the query's views (None:
    feedback alone) and where candidates' picture vectors come from (``vectors``: product ids → (n, dim),
    remembered in ``known`` once read)."""

    judged: Judgements
    weights: FeedbackWeights
    views: np.ndarray | None
    vectors: Callable[[Sequence[str]], dict[str, np.ndarray]]
    known: dict[str, np.ndarray] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def pictures_of(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, dim) vectors of every picture of ``ids`` and the index into ``ids`` of each row (a product
        whose vectors cannot be read: none)."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.known]
        if missing:
            found = self.vectors(missing)
            self.known.update((i, np.asarray(v, dtype=np.float32).reshape(len(v), -1)) for i, v in found.items())
        vecs = [self.known.get(pid) for pid in ids]
        counts = np.fromiter((0 if v is None else len(v) for v in vecs), dtype=np.int64, count=len(vecs))
        if not counts.sum():
            dim = self.judged.liked.shape[1] if self.judged.liked.ndim == 2 else 0
            return np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
        pictures = np.concatenate([v for v in vecs if v is not None and len(v)])
        return pictures, np.repeat(np.arange(len(vecs), dtype=np.int64), counts)

    def keys(self, ids: Sequence[str], kinds: Sequence[str | None], families: np.ndarray) -> np.ndarray:
        """:func:`feedback_keys` of the candidates ``ids`` (a candidate without vectors keeps -1 similarity)."""
        pictures, owner = self.pictures_of(ids)
        liked_ids, disliked_ids = set(self.judged.liked_ids), set(self.judged.disliked_ids)
        liked = np.fromiter((i in liked_ids for i in ids), dtype=bool, count=len(ids))
        disliked = np.fromiter((i in disliked_ids for i in ids), dtype=bool, count=len(ids))
        if not len(owner):
            keys = np.full(len(ids), -1.0, dtype=np.float32)
            return keys + np.float32(self.weights.judged) * (liked.astype(np.float32) - disliked.astype(np.float32))
        keys = feedback_keys(pictures, owner, self.views, self.judged, self.weights, kinds, families, liked, disliked)
        return np.where(np.isfinite(keys), keys, -1.0).astype(np.float32)
