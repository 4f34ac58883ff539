"""Regular expressions for the OpenAPI schema, so it states what the server refuses (422) instead of leaving it
to a description (Schemathesis ST201: a request the schema allows must not be refused). Each is an ECMA-262
pattern that Python's ``re`` reads the same way (only classes, ``\\s``, alternation, anchors).

* :data:`WORDS_PATTERN`: query words (:func:`~lookalike.catalog.text_query.check_text`): something besides
  whitespace, no control characters.
* :func:`colour_pattern`: a colour preference (:func:`~lookalike.colour.ranking.preference_distribution`): one of
  the colour names or families the server knows, in any case, words separated by spaces, ``_`` or ``-``.
"""

from __future__ import annotations

from functools import lru_cache

from lookalike.colour.families import known_names

__all__ = ["CONTROL", "WORDS_PATTERN", "colour_pattern"]

#: The control characters (Unicode Cc) as the inside of a character class.
CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
#: Text with something besides whitespace and no control characters.
WORDS_PATTERN = f"^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in word)


@lru_cache(maxsize=1)
def colour_pattern() -> str:
    """The colour names and families :func:`~lookalike.colour.families.family_of` knows, case-insensitively."""
    names = ("[\\s_-]+".join(_any_case(w) for w in name.split()) for name in known_names())
    return f"^\\s*(?:{'|'.join(names)})\\s*$"
