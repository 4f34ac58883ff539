"""What ``lookalike search`` prints: the table (ranked by the figure that orders it, the similarity beside it),
the JSON lines (each hit with its scores, matched picture and product fields; ``--compact``: id and score), and
what a search that found nothing says."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from lookalike.cli.options import out

__all__ = ["HIT_FIELDS", "json_hit", "json_result", "nothing_found", "print_hits"]

HIT_FIELDS = ("title", "brand", "category", "subcategory", "article_type", "colour", "gender", "price", "in_stock")


def json_hit(rank: int, h) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """One hit of ``--json``: its place, what orders the list (``rank_score``), the similarity (``score``), the
    colour agreement, which picture matched (an index into the product's pictures, and that picture) and the
    product's fields."""
    p = h.product
    pictures = getattr(p, "images", None) or ([p.image] if p.image else [])
    match = h.matched_image if 0 <= h.matched_image < len(pictures) else 0
    return {
        "rank": rank,
        "id": h.id,
        "rank_score": round(h.order_key, 6),
        "score": round(h.score, 6),
        "colour_match": None if h.colour_match is None else round(h.colour_match, 6),
        "matched_image": h.matched_image,
        "picture": pictures[match] if pictures else None,
        **{name: getattr(p, name, None) for name in HIT_FIELDS},
        **({"duplicates": h.duplicates} if h.duplicates else {}),
    }


def json_result(result, compact: bool = False) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """A search's JSON line; ``compact``: each hit as ``{id, score}`` (and its duplicates), the earlier shape."""
    colour = {"ranked_by": result.colour, "source": result.colour_source}
    if result.detected is not None:
        colour["detected"] = result.detected.family
    if compact:
        hits = [{"id": h.id, "score": round(h.score, 6), **({"duplicates": h.duplicates} if h.duplicates else {})}
                for h in result.hits]  # fmt: skip
    else:
        hits = [json_hit(rank, h) for rank, h in enumerate(result.hits, start=1)]
    understood = {"understood": result.understood} if result.understood else {}
    kind = result.kind.to_dict() if getattr(result, "kind", None) is not None else {"seen": [], "used": None}
    return {**understood, "colour": colour, "kind": kind, "hits": hits}


def nothing_found(cat, filters) -> str:  # type: ignore[no-untyped-def]
    """What to say when a search finds nothing: the catalogue is empty (and how to fill it), or the filters
    leave nothing."""
    if len(cat) == 0:
        return (
            f"The catalogue {cat.path} is empty: add products with "
            f"lookalike ingest {cat.path} --images FOLDER (or --csv FILE)."
        )
    return "no products match these filters" if not filters.is_empty() else "no products match"


def print_hits(label: str, hits, result=None, nothing: str = "no products match") -> None:  # type: ignore[no-untyped-def]
    """The hits as a table, ranked by ``score`` (what orders them: the similarity plus the colour agreement and
    the kind), with the ``similarity`` beside it, under the kinds the picture looks like; ``nothing``: what to say
    instead of an empty table."""
    if not hits:
        out.print(f"Most like {label}: {nothing}", highlight=False, markup=False)
        return
    title = f"Most like {label}"
    if result is not None and result.detected is not None:
        title += f" · colour seen: {result.detected.family}"
    if result is not None and result.understood:
        out.print(f"Showing results for: {result.understood}", highlight=False, markup=False)
    if result is not None and result.colour_source == "preference":
        title += f" · ranked for: {result.colour}"
    seen = getattr(result, "kind", None)
    if seen is not None and (seen.seen or seen.used):
        looks = " · ".join(f"{k} {p:.0%}" for k, p in seen.seen)
        used = f" (ranked by {seen.used}{', as chosen' if seen.source == 'chosen' else ''})" if seen.used else ""
        out.print(f"Looks like: {looks or '-'}{used}", highlight=False, markup=False)
    table = Table(title=title, title_justify="left", caption_justify="left")
    for col, just in (("#", "right"), ("score", "right"), ("similarity", "right"), ("id", "left"), ("title", "left"),
                      ("type", "left"), ("colour", "left"), ("gender", "left"), ("price", "right")):  # fmt: skip
        table.add_column(col, justify=just, style="dim" if col == "similarity" else None, min_width=len(col))  # type: ignore[arg-type]
    for rank, h in enumerate(hits, start=1):
        p = h.product
        cells = (h.id, p.title or "", p.article_type or "", p.colour or "", p.gender or "")
        price = "" if p.price is None else f"{p.price:.2f}"
        table.add_row(str(rank), f"{h.order_key:.3f}", f"{h.score:.3f}", *(escape(c) for c in cells), price)
    if any(h.order_key != h.score for h in hits):
        table.caption = "score orders the list: the similarity plus the colour agreement and the kind's probability"
    out.print(table, soft_wrap=False)
    for rank, h in enumerate(hits, start=1):
        if h.duplicates:
            same = f"#{rank} {h.id}: {len(h.duplicates)} more with this picture ({', '.join(h.duplicates)})"
            out.print(same, highlight=False, markup=False)
