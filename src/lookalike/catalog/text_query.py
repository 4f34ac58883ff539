"""Search by words, and by a picture plus words: the pure parts (checking the words, reading what they ask
for, fusing the word and vector rankings, moving a picture's vector by the words).

* **Words alone** ("navy blue shirt for men"): the text tower's vector (:mod:`lookalike.text`, in the image
  model's space) is searched in the vector index: cross-modal, so a catalogue of pictures with no text
  answers too. Where the backend has a word index (the embedded backend's SQLite FTS5), its BM25 list is
  fused with the vector list by :func:`fuse_ranked`: a weighted sum, ``cosine + TEXT_BM25_WEIGHT × bm25 /
  max bm25`` over the union of both candidate lists (every candidate's cosine computed exactly), chosen
  over reciprocal-rank fusion by measurement (docs/quality.md, "Words").
* **A picture plus words** ("this, but in red"): each view's vector moved towards the words,
  ``q = norm(img + IMAGE_TEXT_WEIGHT × txt)`` (:func:`move_by_words`).
* In both, words naming a colour act as the colour preference (the colour stage,
  :mod:`lookalike.catalog.ranking`), and words naming a gender or one of the catalogue's article types act
  through a small bonus on the products whose facets match (:func:`~lookalike.catalog.ranking.facet_stage`):
  soft, never a filter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lookalike.colour.families import family_of
from lookalike.errors import InvalidQueryError
from lookalike.product import Hit

__all__ = [
    "FUSION",
    "GENDER_WORDS",
    "IMAGE_TEXT_WEIGHT",
    "MAX_TEXT_LENGTH",
    "RRF_K",
    "TEXT_BM25_WEIGHT",
    "WORDS_COLOUR_WEIGHT",
    "TextIntent",
    "check_text",
    "fuse_ranked",
    "move_by_words",
    "read_intent",
]

#: The longest query text accepted (characters).
MAX_TEXT_LENGTH = 500
#: How a text query fuses the vector and the BM25 lists: "weighted" (chosen) or "rrf".
FUSION = "weighted"
#: Weight of the normalised BM25 score against cosine similarity (docs/quality.md, "Words").
TEXT_BM25_WEIGHT = 0.15
#: Reciprocal-rank fusion's constant (for ``fusion="rrf"``).
RRF_K = 60
#: Weight of the colour stage when the colour comes from the words (docs/quality.md, "Words").
WORDS_COLOUR_WEIGHT = 0.1
#: Weight of the words' vector added to a picture's (docs/quality.md, "Words": photo plus words).
IMAGE_TEXT_WEIGHT = 1.0

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_GENDERS: dict[str, str] = {
    "men": "Men", "man": "Men", "mens": "Men", "male": "Men", "gents": "Men", "gent": "Men", "him": "Men",
    "women": "Women", "woman": "Women", "womens": "Women", "female": "Women", "ladies": "Women", "lady": "Women",
    "her": "Women", "boys": "Boys", "boy": "Boys", "girls": "Girls", "girl": "Girls", "unisex": "Unisex",
}  # fmt: skip
#: The words that name a gender ("men", "ladies", "girls"...).
GENDER_WORDS = frozenset(_GENDERS)


def check_text(text: object) -> str:
    """The query words with runs of spaces collapsed; raises :class:`InvalidQueryError` for a non-string,
    an empty text, one over :data:`MAX_TEXT_LENGTH` characters, or one with control characters."""
    if not isinstance(text, str):
        raise InvalidQueryError("text must be a string")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidQueryError(f"text is longer than {MAX_TEXT_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise InvalidQueryError("text has control characters")
    clean = " ".join(text.split())
    if not clean:
        raise InvalidQueryError("text is empty")
    return clean


@dataclass(frozen=True)
class TextIntent:
    """What words ask for: a colour family, a gender (Men, Women, Boys, Girls, Unisex), article types."""

    colour: str | None = None
    gender: str | None = None
    article_types: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def _forms(name: str) -> frozenset[str]:
    """The padded forms (" shirts ", " shirt ") of an article type a query's words may name it by."""
    words = " ".join(_WORD.findall(name.casefold()))
    out = {words}
    if words.endswith("es"):
        out.add(words[:-2])
    if words.endswith("s"):
        out.add(words[:-1])
    return frozenset(f" {w} " for w in out if w)


def read_intent(text: str, article_types: Sequence[str] = ()) -> TextIntent:
    """The colour (the first colour name of the words, two-word names first: "navy blue" → blue), gender and
    article types (of ``article_types``, the catalogue's, singular or plural, as whole words) in ``text``."""
    words = _WORD.findall(text.casefold())
    colour = None
    for i in range(len(words)):
        fam = family_of(" ".join(words[i : i + 2])) if i + 1 < len(words) else None
        fam = fam or family_of(words[i])
        if fam is not None:
            colour = fam
            break
    gender = next((_GENDERS[w] for w in words if w in _GENDERS), None)
    padded = f" {' '.join(words)} "
    types = tuple(t for t in article_types if t and any(f in padded for f in _forms(t)))
    return TextIntent(colour, gender, types)


def move_by_words(views: np.ndarray, words: np.ndarray, weight: float = IMAGE_TEXT_WEIGHT) -> np.ndarray:
    """Each view's vector moved towards the words' vector: ``norm(view + weight × words)``, (n, dim)."""
    q = np.asarray(views, dtype=np.float32) + np.float32(weight) * np.asarray(words, dtype=np.float32).reshape(1, -1)
    return (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fuse_ranked(
    vector_hits: Sequence[Hit],
    word_hits: Sequence[tuple[Hit, float]],
    cosine_of: Callable[[list[str]], dict[str, float]],
    depth: int,
    fusion: str = FUSION,
    weight: float = TEXT_BM25_WEIGHT,
) -> list[Hit]:
    """The top ``depth`` of the vector list (hits by cosine) and the word list ((hit, BM25) pairs) fused.

    ``weighted``: each candidate of either list scores ``cosine + weight × bm25 / max bm25`` (``cosine_of``
    gives the cosine of the word hits the vector list lacks; BM25 0 for those the word list lacks).
    ``rrf``: ``Σ 1 / (RRF_K + rank)`` over the lists (scaled by ``RRF_K`` so a first place scores 1).
    Ties keep the vector list's order, then the word list's. A hit's ``score`` is its fused score."""
    if not word_hits:
        return list(vector_hits[:depth])
    hits: dict[str, Hit] = {}
    cos: dict[str, float] = {}
    for h in vector_hits:
        hits.setdefault(h.id, h)
        cos.setdefault(h.id, h.score)
    for h, _ in word_hits:
        hits.setdefault(h.id, h)
    fused: dict[str, float] = {}
    if fusion == "rrf":
        for r, h in enumerate(vector_hits):
            fused[h.id] = fused.get(h.id, 0.0) + RRF_K / (RRF_K + r + 1)
        for r, (h, _) in enumerate(word_hits):
            fused[h.id] = fused.get(h.id, 0.0) + RRF_K / (RRF_K + r + 1)
    elif fusion == "weighted":
        missing = [h.id for h, _ in word_hits if h.id not in cos]
        if missing:
            cos.update(cosine_of(missing))
        top = max(max(s for _, s in word_hits), 1e-9)
        bm25 = {h.id: s / top for h, s in word_hits}
        fused = {i: cos.get(i, 0.0) + weight * bm25.get(i, 0.0) for i in hits}
    else:
        raise InvalidQueryError(f"unknown fusion {fusion!r}; use 'weighted' or 'rrf'")
    order = sorted(hits, key=lambda i: -fused[i])  # stable: insertion order breaks ties
    return [Hit(i, float(fused[i]), hits[i].product, matched_image=hits[i].matched_image) for i in order[:depth]]
