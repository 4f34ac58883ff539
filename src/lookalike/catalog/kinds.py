"""What kind of product a query looks like, over the catalogue's own kinds, and the kind the page is ranked by.

A query with a picture is read by the kind head (:mod:`lookalike.kind`) from the vectors its search embeds anyway
(the picture and its mirror image): its distribution over the head's kinds is given to the catalogue's article
types by name (:func:`lookalike.kind.kind_key`), and the kind stage
(:func:`lookalike.catalog.ranking.kind_stage`) ranks by it in place of the nearest products' vote. A kind the
shopper chose (a chip: ``kind="Dresses"``) ranks by that kind instead, for any query. The result says what was
seen and what was used (:class:`KindSeen`), for the chips of the page, the API and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import InvalidQueryError
from lookalike.extractors.identity import model_family
from lookalike.extractors.kind_branch import KindBranch, kind_branch_of
from lookalike.kind import KindModel, KindPrior, default_kind_model, kind_key, matching_kind

if TYPE_CHECKING:
    from lookalike.catalog.query import QueryHost
    from lookalike.catalog.ranking import QueryContext

__all__ = ["SHOWN_KINDS", "KindSeen", "kind_branch_for", "kind_model_for", "kind_plan", "with_kind"]

#: How many of the likeliest kinds a result names (the chips).
SHOWN_KINDS = 3


@dataclass
class KindSeen:
    """The kinds a query looks like (``seen``: the likeliest of the catalogue's kinds with their probabilities,
    likeliest first; empty when no picture was read), the kind its page is ranked by (``used``; None: no kind
    stage ran) and why (``source``: "detected" from the picture, "chosen" by the shopper)."""

    seen: list[tuple[str, float]] = field(default_factory=list)
    used: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "seen": [{"kind": k, "probability": round(p, 4)} for k, p in self.seen],
            "used": self.used,
            "source": self.source,
        }


def kind_model_for(host: QueryHost) -> KindModel | None:
    """The shipped kind head when it reads this catalogue's vectors (same embedding model family and size),
    else None (another embedding model: the nearest products' vote ranks by kind instead); None also when the
    host turned the kind stage off (``kind_rank``)."""
    if not host.kind_rank:
        return None
    model = default_kind_model()
    if model is None or model.dim != host.dim:
        return None
    return model if model_family(host.extractor.name) == model_family(model.embedding) else None


def kind_branch_for(host: QueryHost) -> KindBranch | None:
    """The kind branch (:mod:`lookalike.extractors.kind_branch`) when the kind head has one, the kind stage is on and
    this catalogue's model file is the one the branch was grafted on: a picture's views are then embedded by the
    branch's graph, which gives the same vectors and the kinds; else None."""
    return kind_branch_of(host.extractor, kind_model_for(host))


@lru_cache(maxsize=8)
def _class_columns(classes: tuple[str, ...], kinds: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """(the catalogue kinds the head can name, a (classes, those kinds) 0/1 matrix summing classes into them)."""
    keys = [kind_key(c) for c in classes]
    named = tuple(k for k in kinds if k and kind_key(k) in keys)
    mat = np.array([[float(key == kind_key(k)) for k in named] for key in keys], dtype=np.float32)
    return named, mat.reshape(len(classes), len(named))


def _distribution(model: KindModel, probabilities: np.ndarray, kinds: tuple[str, ...]) -> dict[str, float]:
    named, mat = _class_columns(model.classes, kinds)
    if not named:
        return {}
    mass = probabilities @ mat
    total = float(mass.sum())
    return {} if total <= 0 else {k: float(p) / total for k, p in zip(named, mass.tolist(), strict=True)}


def kind_plan(
    host: QueryHost, views: np.ndarray | None, kind: str | None, read: np.ndarray | None = None
) -> tuple[KindPrior | None, KindSeen]:
    """(the prior the kind stage ranks by, or None; what the result reports) for a query whose picture's vectors
    are ``views`` (None: no picture), read by the kind branch as ``read`` (its (n, classes) probabilities of the
    same views, None where no branch read them), and the kind the shopper chose (``kind``, None: none). Raises
    :class:`InvalidQueryError` for a chosen kind the catalogue does not have."""
    kinds = host.article_types()
    chosen = None
    if kind is not None:
        chosen = matching_kind(kind, kinds)
        if chosen is None:
            some = ", ".join(sorted(kinds)[:12]) or "none: its products have no article type"
            raise InvalidQueryError(f"the catalogue has no kind {kind!r}; its kinds: {some}")
    model = kind_model_for(host) if views is not None else None
    dist = _distribution(model, model.predict(views, read), kinds) if model is not None and views is not None else {}
    prior = KindPrior(dist) if dist else None
    seen = KindSeen(prior.ranked(SHOWN_KINDS) if prior is not None else [])
    if chosen is not None:
        return KindPrior.chosen(chosen), replace(seen, used=chosen, source="chosen")
    if prior is None:
        return None, seen
    return prior, replace(seen, used=seen.seen[0][0], source="detected")


def with_kind(ctx: QueryContext, prior: KindPrior | None, candidates: int) -> QueryContext:
    """``ctx`` ranking by ``prior`` (the kind stage, in place of the colour stage's vote of the nearest products)
    over at least ``candidates`` candidates; ``ctx`` itself when there is no prior."""
    if prior is None:
        return ctx
    return replace(ctx, kind=prior, kind_weight=0.0, candidates=max(ctx.candidates, candidates, ctx.k))
