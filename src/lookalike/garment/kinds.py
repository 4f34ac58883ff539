"""The coarse kinds of garment the garment detector tells apart, and the catalogue article types of each.

:data:`KINDS` are the kinds a found garment may have (``None``: something worn or carried that is none of
them: a watch, sunglasses, a belt); :func:`kind_of` maps a catalogue ``articleType`` to its kind. The
detector's classes are :data:`KINDS` and then one class for the rest (:data:`OTHER`).
"""

from __future__ import annotations

__all__ = ["ARTICLE_KINDS", "CLASSES", "KINDS", "OTHER", "kind_of"]

KINDS: tuple[str, ...] = ("top", "bottom", "dress", "outerwear", "footwear", "bag", "hat")
OTHER = "other"  # the detector's last class: reported with kind None
CLASSES: tuple[str, ...] = (*KINDS, OTHER)

ARTICLE_KINDS: dict[str, str] = {
    **dict.fromkeys(
        ("Tshirts", "Shirts", "Tops", "Kurtas", "Kurtis", "Tunics", "Sweatshirts", "Sweaters", "Innerwear Vests",
         "Camisoles", "Bra", "Blouses", "Polos"),
        "top",
    ),
    **dict.fromkeys(
        ("Jeans", "Trousers", "Shorts", "Track Pants", "Capris", "Leggings", "Skirts", "Lounge Pants",
         "Lounge Shorts", "Churidar", "Salwar", "Patiala", "Jeggings", "Tights", "Stockings", "Briefs", "Boxers",
         "Trunk", "Swimwear"),
        "bottom",
    ),
    **dict.fromkeys(("Dresses", "Jumpsuit", "Kurta Sets", "Sarees", "Nightdress", "Rompers"), "dress"),
    **dict.fromkeys(("Jackets", "Blazers", "Coats", "Rain Jacket", "Waistcoat", "Shrug", "Tracksuits"), "outerwear"),
    **dict.fromkeys(
        ("Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals", "Sports Sandals", "Flip Flops",
         "Booties", "Boots", "Shoe Accessories"),
        "footwear",
    ),
    **dict.fromkeys(
        ("Handbags", "Backpacks", "Clutches", "Duffel Bag", "Laptop Bag", "Messenger Bag", "Rucksacks",
         "Waist Pouch", "Tablet Sleeve", "Trolley Bag"),
        "bag",
    ),
    **dict.fromkeys(("Caps", "Hat", "Headband"), "hat"),
    **dict.fromkeys(
        ("Watches", "Sunglasses", "Belts", "Wallets", "Socks", "Ties", "Scarves", "Mufflers", "Stoles", "Gloves",
         "Dupatta", "Mobile Pouch", "Cufflinks", "Bracelet", "Necklace and Chains", "Umbrellas"),
        OTHER,
    ),
}  # fmt: skip


def kind_of(article_type: str | None) -> str | None:
    """The detector class of a catalogue article type: one of :data:`CLASSES`, or None when it is not worn or
    carried (perfume, a gift set, a football)."""
    return ARTICLE_KINDS.get((article_type or "").strip())
