"""Cell values of shop exports: prices with currencies, stock flags, picture lists, HTML, category paths.

Pure functions on strings. A value that cannot be read raises :class:`ValueError` whose message names the
value (``price 'abc' is not a number``); the CSV reader adds the line and makes it that product's error.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import PurePosixPath

__all__ = [
    "IMAGE_EXTENSIONS",
    "category_path",
    "clean",
    "delimiter_of",
    "parse_price",
    "parse_quantity",
    "parse_stock",
    "split_list",
    "split_pictures",
    "strip_html",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)

#: Currency symbols read as ISO codes (``$29.99`` -> USD); an explicit currency column wins over them.
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_SYMBOL = "[" + re.escape("".join(CURRENCY_SYMBOLS)) + "]"
_CODE = r"[A-Z]{3}"
_PRICE = re.compile(rf"^(?P<pre>{_CODE}(?=[\s\d+-])|{_SYMBOL})?\s*(?P<num>.*?)\s*(?P<post>{_CODE}|{_SYMBOL})?$")
_NUMBER = re.compile(r"[+-]?(?=[\d.,]*\d)[\d.,]+")

_IN_STOCK = {"true", "yes", "y", "t", "instock", "available", "limitedavailability", "availablefororder", "onsale"}
_OUT_OF_STOCK = {
    "false", "no", "n", "f", "outofstock", "soldout", "unavailable", "notavailable", "discontinued",
    "preorder", "backorder",
}  # fmt: skip
_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")


def clean(value: object) -> str:
    """A cell as a stripped string ('' for a missing cell)."""
    return value.strip() if isinstance(value, str) else ""


def _number(text: str) -> float:
    """``1,299.00``, ``1.299,00``, ``1 299,00``, ``29,99``: the last of ``.``/``,`` is the decimal point,
    except a lone ``,`` followed by exactly three digits (``1,299``), which groups thousands."""
    t = re.sub(r"[\s\u00a0\u202f']", "", text)
    if not _NUMBER.fullmatch(t):
        raise ValueError
    if "," in t and "." in t:
        point = "," if t.rfind(",") > t.rfind(".") else "."
        t = t.replace("." if point == "," else ",", "").replace(point, ".")
    elif "," in t:
        parts = t.split(",")
        t = t.replace(",", "") if len(parts) > 2 or len(parts[-1]) == 3 else t.replace(",", ".")
    elif t.count(".") > 1:
        t = t.replace(".", "")
    return float(t)


def parse_price(value: str) -> tuple[float | None, str | None]:
    """``(number, currency)`` from a price cell: ``29.99``, ``29.99 USD``, ``USD 29.99``, ``$29.99``,
    ``1.299,00 EUR``. Blank: ``(None, None)``. Raises :class:`ValueError` for anything else."""
    text = value.strip()
    if not text:
        return None, None
    m = _PRICE.match(text)
    code = (m.group("pre") or m.group("post")) if m else None
    try:
        price = _number(m.group("num") if m else text)
    except ValueError:
        try:
            price = float(text)  # 1e3; "nan" and "inf" too, refused below
        except ValueError:
            raise ValueError(f"price {value!r} is not a number") from None
        code = None
    if not math.isfinite(price):
        raise ValueError(f"price {value!r} is not a finite number")
    return price, CURRENCY_SYMBOLS.get(code, code) if code else None


def parse_quantity(value: str, what: str = "stock") -> int | None:
    """A whole number (``3``, ``3.0``, ``-1``), or ``None`` when blank. Raises :class:`ValueError`."""
    text = value.strip()
    if not text:
        return None
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{what} {value!r} is not a whole number")
    return int(float(text))


def parse_stock(value: str) -> bool | None:
    """A stock cell as ``in_stock``: yes/true/1/"in stock"/a count > 0 -> True; no/false/0/"out of stock"/
    "sold out"/"preorder"/"backorder"/a count <= 0 -> False; blank -> None. Raises :class:`ValueError`."""
    text = value.strip()
    if not text:
        return None
    if _INTEGER.fullmatch(text):
        return int(float(text)) > 0
    word = re.sub(r"[\s_\-]", "", text.lower())
    if word in _IN_STOCK:
        return True
    if word in _OUT_OF_STOCK:
        return False
    raise ValueError(f"stock {value!r} is not understood (a count, yes/no, in stock/out of stock)")


def split_list(value: str) -> list[str]:
    """A list cell: a JSON list (``["a","b"]``), or ``|``-separated, or comma-separated values."""
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            out = []
            for item in items:
                if isinstance(item, dict):  # [{"url": ...}] lists of picture objects
                    item = next((item[k] for k in ("url", "src", "href", "path") if isinstance(item.get(k), str)), "")
                if isinstance(item, str | int | float) and str(item).strip():
                    out.append(str(item).strip())
            return out
    sep = "|" if "|" in text else ","
    return [part.strip() for part in text.split(sep) if part.strip()]


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _looks_like_picture(text: str) -> bool:
    return PurePosixPath(text.split("?", 1)[0]).suffix.lower() in IMAGE_EXTENSIONS


def split_pictures(value: str) -> list[str]:
    """The pictures of a cell, in order: one path or URL, a JSON list, ``|``-separated, or comma-separated.

    A comma splits a cell only where every piece is a picture on its own: each piece starts with
    ``http(s)://`` (in a cell of URLs), or each ends in an image extension (in a cell of paths). So
    ``https://cdn/w_300,h_300/a.jpg`` stays one URL and ``a.jpg,b.jpg`` is two pictures.
    """
    text = value.strip()
    if not text:
        return []
    if text.startswith("[") or "|" in text:
        return split_list(text)
    if "," not in text:
        return [text]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    ok = all(_is_url(p) for p in parts) if _is_url(text) else all(_looks_like_picture(p) for p in parts)
    return parts if ok else [text]


def strip_html(value: str) -> str:
    """Text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", value, flags=re.I | re.S)
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    return re.sub(r"\s+", " ", text).strip()


def category_path(value: str) -> list[str]:
    """``"Apparel > Topwear > Tshirts"`` -> ``["Apparel", "Topwear", "Tshirts"]`` (blank segments dropped)."""
    return [part.strip() for part in value.split(">") if part.strip()]


def delimiter_of(header_line: str) -> str:
    """The delimiter a header line uses: a tab when it has tabs and no more commas than tabs, a ``;`` when
    it has more semicolons than commas and tabs, else a comma."""
    tabs, commas, semis = header_line.count("\t"), header_line.count(","), header_line.count(";")
    if tabs and tabs >= commas:
        return "\t"
    if semis > commas and semis > tabs:
        return ";"
    return ","
