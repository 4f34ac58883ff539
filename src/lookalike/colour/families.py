"""The 12 colour families a shopper sees, and the catalogue colour names that belong to each.

A shop's colour field holds many names ("Navy Blue", "Off White", "Maroon"); ranking compares families. The
map follows the one of EVALUATION.md task 3 (``colour_families.json``) and adds common synonyms a retailer's
catalogue uses. Names are matched case- and space-insensitively; an unknown name has no family (``None``)
and is never guessed from its spelling alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["FAMILIES", "MULTI", "family_index", "family_of", "known_names", "nearest_names"]

#: The families, in the fixed order of every colour distribution.
FAMILIES: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "blue",
    "red",
    "pink",
    "purple",
    "green",
    "yellow",
    "orange",
    "brown",
    "multi",
)
MULTI = "multi"
_INDEX = {fam: i for i, fam in enumerate(FAMILIES)}

_NAMES: dict[str, tuple[str, ...]] = {
    "black": ("Black", "Jet Black", "Onyx"),
    "white": ("White", "Off White", "Cream", "Ivory", "Snow"),
    "grey": ("Grey", "Gray", "Grey Melange", "Charcoal", "Silver", "Steel", "Metallic", "Ash", "Slate"),
    "blue": (
        "Blue",
        "Navy Blue",
        "Navy",
        "Teal",
        "Turquoise Blue",
        "Turquoise",
        "Sky Blue",
        "Light Blue",
        "Denim",
        "Royal Blue",
        "Cobalt",
        "Aqua",
        "Cyan",
        "Indigo",
    ),
    "red": ("Red", "Maroon", "Burgundy", "Rust", "Wine", "Crimson", "Scarlet"),
    "pink": ("Pink", "Magenta", "Peach", "Fuchsia", "Rose", "Coral", "Blush"),
    "purple": ("Purple", "Lavender", "Mauve", "Violet", "Lilac", "Plum"),
    "green": ("Green", "Olive", "Sea Green", "Fluorescent Green", "Lime", "Mint", "Khaki Green", "Emerald"),
    "yellow": ("Yellow", "Mustard", "Gold", "Lemon"),
    "orange": ("Orange", "Copper", "Tangerine"),
    "brown": (
        "Brown",
        "Beige",
        "Tan",
        "Khaki",
        "Coffee Brown",
        "Taupe",
        "Bronze",
        "Nude",
        "Skin",
        "Camel",
        "Chocolate",
        "Sand",
    ),
    "multi": ("Multi", "Multicolour", "Multicolor", "Multi Colour", "Printed"),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().casefold())


@lru_cache(maxsize=1)
def _lookup() -> dict[str, str]:
    table = {_key(n): fam for fam, names in _NAMES.items() for n in names}
    table.update({fam: fam for fam in FAMILIES})
    return table


def family_of(name: str | None) -> str | None:
    """The family of a colour name (``"Navy Blue"`` → ``"blue"``), or ``None`` when the name is unknown."""
    if not name or not isinstance(name, str):
        return None
    return _family(name)


@lru_cache(maxsize=4096)
def _family(name: str) -> str | None:
    return _lookup().get(_key(name))


def known_names() -> tuple[str, ...]:
    """Every colour name :func:`family_of` knows (and the families), as it compares them: lower case, words
    separated by one space (a name is matched ignoring case, and runs of spaces, ``_`` and ``-``)."""
    return tuple(sorted(_lookup()))


def family_index(name: str | None) -> int:
    """Position of ``name``'s family in :data:`FAMILIES`, or -1."""
    fam = family_of(name)
    return _INDEX[fam] if fam is not None else -1


def nearest_names(family: str, known: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Catalogue colour names of ``family``: those of ``known`` (a catalogue's own names) first, else the
    family's usual names."""
    mine = [n for n in known if family_of(n) == family]
    return mine or list(_NAMES.get(family, ()))[:3]
