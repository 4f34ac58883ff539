"""Kinds of product: what a query picture shows (the kind head over its embedding), the catalogue's own names
for kinds, and the kind stage's arithmetic. Lower than the catalogue: imports only numpy and
:mod:`lookalike.errors`."""

from lookalike.kind.model import DEFAULT_KIND_MODEL, KindBranchSpec, KindModel, default_kind_model
from lookalike.kind.names import catalogue_distribution, kind_key, matching_kind
from lookalike.kind.ranking import (
    KIND_PREFERENCE_WEIGHT,
    KIND_SPREAD_MIN,
    KIND_SPREAD_SHARE,
    KIND_WEIGHT,
    KindPrior,
    kind_bonus,
    kind_order,
)

__all__ = [
    "DEFAULT_KIND_MODEL",
    "KIND_PREFERENCE_WEIGHT",
    "KIND_SPREAD_MIN",
    "KIND_SPREAD_SHARE",
    "KIND_WEIGHT",
    "KindBranchSpec",
    "KindModel",
    "KindPrior",
    "catalogue_distribution",
    "default_kind_model",
    "kind_bonus",
    "kind_key",
    "kind_order",
    "matching_kind",
]
