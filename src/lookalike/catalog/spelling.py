"""Misspelt query words, corrected against the catalogue's own words before a words query is read.

"blak jeans" lost its colour: neither the word index nor the colour reading knows "blak". Each word of a query
that is not a real word is replaced by the nearest word of the catalogue, when one is near enough:

* **Real words** are kept as typed: the catalogue's own words (titles, brands, types, colours, genders,
  categories, ``extra``: :mod:`lookalike.store.vocabulary`), the colour names and families
  (:mod:`lookalike.colour.families`), the catalogue's article types, the gender words, the glue words of the
  word index, the whole words of the text tower's vocabulary, and English words (the 82,765 words of
  symspellpy's English frequency dictionary: "cardigan" stays "cardigan" in a shop that sells none). A word
  whose singular or plural is real is real. Words of two letters or fewer and words touching digits ("501",
  "w11610l1") are kept too.
* **Nearest** (SymSpell, ``symspellpy``): the optimal-string-alignment distance (an insertion, deletion,
  substitution or swap of two neighbouring letters costs 1), at most 1 for words of up to 7 letters and 2 for
  longer ones (:func:`max_distance`); of the nearest, a colour, type or gender name first, then the catalogue's
  word it has most often, then a word of the text tower's ("everyda" → "everyday"). A three-letter word is only
  corrected to a name, by a swap or a missing letter ("mne" → "men"; "taj" stays).
* The catalogue's words are counted per store state (its ``seq``), read again only for the products written
  since (a deleted product's words stay known). A catalogue with no words of its own (pictures only, or a
  backend without a word index: Milvus) corrects to the colour, type and gender names only: it cannot tell a
  shopper's real word ("kurta") from a typo of a word the text tower knows ("kurt").

A catalogue's ``spelling`` attribute (default True) turns it off. docs/quality.md, "Misspelt words", has the
measurement.
"""

from __future__ import annotations

import importlib.resources
import json
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from symspellpy import SymSpell, Verbosity

from lookalike.catalog.query import QueryHost
from lookalike.catalog.text_query import GENDER_WORDS
from lookalike.colour.families import known_names
from lookalike.store.sqlite import ProductStore
from lookalike.store.text_index import STOPWORDS
from lookalike.store.vocabulary import LETTERS, read_store_words

__all__ = ["Speller", "correct_query", "english_words", "max_distance", "speller_for", "tower_words"]

_NAME = 1 << 50  # a name's count: above any catalogue word's
_WORD = 1 << 32  # a catalogue word's count, plus its own: above any word of the text tower's (1)
_MAX_CACHED = 50_000


def max_distance(length: int) -> int:
    """How many edits a word of ``length`` letters may be from its correction (0: never corrected)."""
    return 0 if length < 3 else 1 if length <= 7 else 2


@lru_cache(maxsize=1)
def tower_words() -> frozenset[str]:
    """The whole words (two letters or more) of the shipped text tower's vocabulary; empty when its tokenizer
    file cannot be read."""
    from lookalike.text.encoder import DEFAULT_TEXT_MODEL

    try:
        data = json.loads(DEFAULT_TEXT_MODEL.with_suffix(".tokenizer.json").read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError):
        return frozenset()
    return frozenset(w for w in vocab if len(w) > 1 and w.isalpha() and w == w.casefold())


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The words of symspellpy's English frequency dictionary (82,765)."""
    text = (importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt").read_text("utf-8")
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


def _swap_or_missing(word: str, other: str) -> bool:
    """Whether ``other`` is ``word`` with two neighbouring letters swapped or one more letter."""
    if len(other) == len(word):
        return sorted(other) == sorted(word)
    it = iter(other)
    return len(other) == len(word) + 1 and all(c in it for c in word)


def _symspell(distance: int) -> SymSpell:
    return SymSpell(max_dictionary_edit_distance=distance, prefix_length=7)


class Speller:
    """Corrects the misspelt words of a text, to the nearest of: ``names`` (colour, type and gender words)
    first, then the catalogue's words ``counts`` (the more frequent first), then ``extra`` (the text tower's
    words). Without catalogue words, and for three-letter words, only to names (a three-letter word only by a
    swap or a missing letter: "mne" → "men", "rd" is kept, "taj" never becomes "tan"). ``keep``: more real
    words, never offered as corrections. Thread-safe; :meth:`add` takes more words."""

    def __init__(
        self,
        counts: Mapping[str, int] | None = None,
        names: Iterable[str] = (),
        keep: Iterable[str] = (),
        extra: Iterable[str] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._words = _symspell(max_distance(99))
        self._names = _symspell(max_distance(99))
        self._known: set[str] = set(keep)
        self._counts: Counter[str] = Counter()
        self._cache: dict[str, str | None] = {}
        with self._lock:
            for w in extra:
                self._entry(self._words, w, 1)
        self.add(counts, names)

    def _entry(self, pool: SymSpell, word: str, count: int) -> None:
        self._known.add(word)
        if len(word) > 2:
            pool.create_dictionary_entry(word, count)

    def add(self, counts: Mapping[str, int] | None = None, names: Iterable[str] = ()) -> None:
        """Take more catalogue words (their counts add up) and names."""
        with self._lock:
            for w, n in (counts or {}).items():
                self._entry(self._words, w, int(n) + (0 if w in self._counts else _WORD))
                if w in self._names.words:
                    self._entry(self._names, w, int(n))
                self._counts[w] += int(n)
            for w in names:
                if w not in self._names.words:
                    self._entry(self._words, w, _NAME)
                    self._entry(self._names, w, 1 + self._counts[w])
            self._cache.clear()

    def is_real(self, word: str) -> bool:
        """Whether a casefolded word is a real word (or its singular or plural is)."""
        known = self._known
        if word in known or f"{word}s" in known:
            return True
        return word.endswith("s") and (word[:-1] in known or (word.endswith("es") and word[:-2] in known))

    def word(self, word: str) -> str | None:
        """The correction of one casefolded word, or None (a real word, too short, or nothing near enough)."""
        limit = max_distance(len(word))
        if limit == 0 or not word.isalpha() or self.is_real(word):
            return None
        with self._lock:
            if word in self._cache:
                return self._cache[word]
            pool = self._words if self._counts and len(word) > 3 else self._names
            found = pool.lookup(word, Verbosity.CLOSEST, max_edit_distance=limit)  # the most frequent first
            best = next((f.term for f in found if len(word) > 3 or _swap_or_missing(word, f.term)), None)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[word] = best
        return best

    def correct(self, text: str) -> str:
        """``text`` with each misspelt word replaced by its correction, in the typed word's case ("Blak" →
        "Black", "BLAK" → "BLACK"); everything else as it was."""
        parts: list[str] = []
        end = 0
        for m in LETTERS.finditer(text):
            before = text[m.start() - 1] if m.start() > 0 else ""
            after = text[m.end()] if m.end() < len(text) else ""
            if before.isdigit() or after.isdigit():  # part of a code ("w11610l1", "90s"): kept
                continue
            typed = m.group()
            fixed = self.word(typed.casefold())
            if fixed is None:
                continue
            if typed.isupper() and len(typed) > 1:
                fixed = fixed.upper()
            elif typed[0].isupper():
                fixed = fixed[:1].upper() + fixed[1:]
            parts += [text[end : m.start()], fixed]
            end = m.end()
        parts.append(text[end:])
        return "".join(parts)


# --- the speller of a catalogue ------------------------------------------------------------------------
@dataclass
class _Entry:
    seq: int
    types: tuple[str, ...] | None
    speller: Speller


_SPELLERS: weakref.WeakKeyDictionary[object, _Entry] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _names(article_types: Iterable[str]) -> set[str]:
    """The words of the colour names and families, the gender words and ``article_types``, casefolded."""
    return {w for n in (*known_names(), *GENDER_WORDS, *article_types) for w in LETTERS.findall(n.casefold())}


def speller_for(host: QueryHost) -> Speller:
    """The catalogue's :class:`Speller`, kept per backend and brought up to date with its store state (the
    words of the products written since) and its article types."""
    backend = host.backend
    types = host.article_types()
    store = backend if isinstance(backend, ProductStore) else None
    seq = store.seq() if store is not None else 0
    with _LOCK:
        entry = _SPELLERS.get(backend)
        if entry is not None and entry.seq == seq and entry.types == types:
            return entry.speller
        if entry is None:
            speller = Speller(keep=STOPWORDS | english_words(), extra=tower_words())
            entry = _SPELLERS[backend] = _Entry(-1, None, speller)
        if store is not None and entry.seq != seq:
            seq, counts = read_store_words(store.path, max(entry.seq, 0))
            entry.speller.add(counts)
        if entry.types != types:
            entry.speller.add(names=_names(types))
        entry.seq, entry.types = seq, types
        return entry.speller


def correct_query(host: QueryHost, text: str) -> str:
    """``text`` with its misspelt words corrected (:class:`Speller`), or as it is when the catalogue's
    ``spelling`` is off."""
    if not getattr(host, "spelling", True):
        return text
    return speller_for(host).correct(text)
