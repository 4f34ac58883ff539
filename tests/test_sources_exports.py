"""Shop exports read with no ``--map``: Shopify, Google Merchant Center (TSV), Farfetch; grouping rows by id,
picture columns and lists, prices with currencies, stock, bad values as per-product errors, folder layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lookalike.errors import SourceError
from lookalike.source_values import parse_price, parse_stock, split_pictures
from lookalike.sources import IngestRecord, read_csv, read_folder

EXPORTS = Path(__file__).parent / "data" / "exports"
IMAGES = EXPORTS / "images"


def _by_id(path: Path, columns: dict[str, str] | None = None) -> dict[str, IngestRecord]:
    return {r.product.id: r for r in read_csv(path, columns)}


def _names(record: IngestRecord) -> list[str]:
    return [Path(s).name for s in record.sources]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the three exports --------------------------------------------------------------------------------
def test_shopify_export_groups_variants_and_pictures_by_handle() -> None:
    recs = _by_id(EXPORTS / "shopify_products.csv")
    assert list(recs) == [
        "nike-white-tee", "puma-navy-shirt", "flying-machine-jeans", "rockport-brown-shoes", "palm-tree-pink-dress",
    ]  # fmt: skip
    tee = recs["nike-white-tee"]
    p = tee.product
    assert (p.title, p.brand, p.article_type) == ("Nike Women White T-Shirt", "Nike", "Tshirts")
    assert (p.price, p.in_stock) == (27.5, True)  # the lowest Variant Price; a variant has 3
    assert (p.category, p.subcategory) == ("Apparel & Accessories", "Clothing")  # from Product Category's path
    assert p.extra["description"] == "Soft cotton tee & sporty. Regular fit"  # Body (HTML) as text
    assert p.extra["tags"] == ["summer", "cotton"] and p.extra["Status"] == "active"
    # Image Src ordered by Image Position (the position-2 picture came first in the file); the Variant
    # Image repeats the main picture and is stored once
    assert _names(tee) == ["10003.jpg", "10003_2.jpg"] and p.images == tee.sources and p.image == tee.source
    assert tee.source == str(IMAGES / "10003.jpg")
    variants = p.extra["variants"]
    assert [(v["sku"], v["options"], v["price"], v["inventory"]) for v in variants] == [
        ("NK-TEE-S", {"Size": "S"}, 29.99, 0),
        ("NK-TEE-M", {"Size": "M"}, 27.5, 3),
        ("NK-TEE-L", {"Size": "L"}, 29.99, 0),
    ]
    assert variants[0]["Variant Compare At Price"] == "35.00" and variants[1]["image"] == str(IMAGES / "10003.jpg")
    assert "Variant SKU" not in p.extra and "Handle" not in p.extra


def test_shopify_later_rows_add_pictures_and_blank_cells_keep_values() -> None:
    recs = _by_id(EXPORTS / "shopify_products.csv")
    shirt = recs["puma-navy-shirt"]  # its second picture is on a row at the end of the file
    assert _names(shirt) == ["10051.jpg", "10051_2.jpg"]
    assert (shirt.product.title, shirt.product.brand, shirt.product.price) == ("Puma Men Navy Blue Shirt", "Puma", 45.0)
    assert shirt.product.in_stock is False  # every variant counts 0
    jeans = recs["flying-machine-jeans"]
    assert _names(jeans) == ["10438.jpg", "10438_2.jpg"]
    assert jeans.product.extra["variants"][0]["options"] == {}  # Shopify's "Default Title" placeholder
    dress = recs["palm-tree-pink-dress"]
    assert dress.product.in_stock is True  # 0 in stock, but Variant Inventory Policy "continue"
    assert all(Path(s).is_file() for r in recs.values() for s in r.sources)


def test_shopify_bad_variant_price_fails_that_product_only() -> None:
    recs = _by_id(EXPORTS / "shopify_products.csv")
    bad = recs["rockport-brown-shoes"]
    # line 9: the first product's Body (HTML) spans two lines
    assert bad.error == "line 9: price 'abc' is not a number" and bad.source is None and bad.sources == []
    assert [r.error for pid, r in recs.items() if pid != "rockport-brown-shoes"] == [None] * 4


def test_merchant_center_tsv() -> None:
    recs = _by_id(EXPORTS / "merchant_center.tsv")
    assert list(recs) == ["G-10003", "G-10051", "G-10196", "G-10438", "G-10016"]
    tee = recs["G-10003"].product
    assert (tee.title, tee.brand, tee.colour, tee.gender, tee.price) == (
        "Nike Women White T-Shirt", "Nike", "White", "female", 29.99,
    )  # fmt: skip
    assert (tee.category, tee.subcategory, tee.article_type) == ("Apparel", "Topwear", "Tshirts")
    assert tee.extra["product_type"] == "Apparel > Topwear > Tshirts" and tee.extra["currency"] == "USD"
    assert tee.url == "https://shop.example.com/p/10003" and tee.extra["description"] == "Soft cotton tee"
    assert _names(recs["G-10003"]) == ["10003.jpg", "10003_2.jpg"]
    # additional_image_link "images/10051_2.jpg,images/10051.jpg": a list, the main picture once
    assert _names(recs["G-10051"]) == ["10051.jpg", "10051_2.jpg"]
    assert {pid: r.product.in_stock for pid, r in recs.items()} == {
        "G-10003": True, "G-10051": False, "G-10196": False, "G-10438": True, "G-10016": None,
    }  # fmt: skip
    assert [recs[p].product.price for p in ("G-10051", "G-10438")] == [45.0, 59.0]  # "USD 45.00", "$59.00"
    assert recs["G-10438"].product.extra["currency"] == "USD"
    assert recs["G-10016"].error == "line 6: price 'cheap' is not a number"


def test_merchant_center_repeated_id_adds_a_picture_and_overwrites_nothing() -> None:
    bag = _by_id(EXPORTS / "merchant_center.tsv")["G-10196"]
    assert _names(bag) == ["10196.jpg", "10196_2.jpg"]
    p = bag.product
    assert (p.title, p.brand, p.price, p.in_stock) == ("Murcia Women Green Handbag", "Murcia", 35.5, False)
    assert p.extra["condition"] == "new"  # the later row's "used" does not replace the first value


def test_farfetch_listing_dotted_names_and_cutout_first() -> None:
    recs = _by_id(EXPORTS / "farfetch.csv")
    assert list(recs) == ["20001", "20002", "20003", "20004", "20005"]
    tee = recs["20001"]
    p = tee.product
    assert (p.title, p.brand, p.gender, p.price, p.in_stock) == ("White cotton T-shirt", "Nike", "WOMAN", 120.0, True)
    assert p.extra["currency"] == "EUR" and p.extra["priceInfo.initialPrice"] == "150"
    assert p.extra["brand.id"] == "1001" and p.extra["availableSizes"] == "XS,S,M"
    assert _names(tee) == ["10003.jpg", "10003_2.jpg"]  # images.cutOut first, though images.model comes first
    assert recs["20002"].product.in_stock is False  # stockTotal 0
    assert recs["20004"].product.extra["currency"] == "GBP" and recs["20004"].product.price == 340.5
    assert recs["20003"].error is not None and recs["20003"].error.startswith("line 4: stock 'lots'")
    bag = recs["20005"]  # a second row adds the model picture; its blank brand overwrites nothing
    assert _names(bag) == ["10196.jpg", "10196_2.jpg"] and bag.product.brand == "Murcia"


# --- delimiters, names, lists ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "sep"), [("feed.txt", "\t"), ("feed.csv", "\t"), ("feed.tsv", "\t"), ("eu.csv", ";")])
def test_delimiter_is_read_from_the_header(tmp_path: Path, name: str, sep: str) -> None:
    text = sep.join(["id", "title", "price"]) + "\n" + sep.join(["a1", "Red, long dress", "12,50 EUR"]) + "\n"
    rec = next(read_csv(_write(tmp_path / name, text)))
    assert (rec.product.id, rec.product.title, rec.product.price) == ("a1", "Red, long dress", 12.5)
    assert rec.product.extra == {"currency": "EUR"}


def test_picture_lists_and_numbered_picture_columns(tmp_path: Path) -> None:
    rows = (
        "id,image_2,image_1,images,image_3\n"
        'j,b.jpg,a.jpg,"[""c.jpg"", ""d.png""]",\n'
        "p,,a.jpg,c.jpg|d.jpg|a.jpg,e.jpg\n"
        'c,,a.jpg,"c.jpg, d.jpg",\n'
        'u,,"https://cdn.example.com/w_300,h_300/a.jpg","https://x.example/1.jpg,https://x.example/2.jpg",\n'
    )
    recs = _by_id(_write(tmp_path / "p.csv", rows))
    assert _names(recs["j"]) == ["a.jpg", "b.jpg", "c.jpg", "d.png"]  # image_1, image_2, then the list
    assert _names(recs["p"]) == ["a.jpg", "e.jpg", "c.jpg", "d.jpg"]
    assert _names(recs["c"]) == ["a.jpg", "c.jpg", "d.jpg"]
    assert recs["u"].sources == [
        "https://cdn.example.com/w_300,h_300/a.jpg", "https://x.example/1.jpg", "https://x.example/2.jpg",
    ]  # fmt: skip
    assert recs["j"].source == str(tmp_path / "a.jpg")


def test_map_images_names_more_picture_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "sku,pic,back,side\nA1,a.jpg,b.jpg,c.jpg\n")
    rec = next(read_csv(path, {"id": "sku", "image": "pic", "images": "side,back"}))
    assert _names(rec) == ["a.jpg", "c.jpg", "b.jpg"] and rec.product.extra == {}
    rec = next(read_csv(path, {"id": "sku", "image": "pic"}))
    assert _names(rec) == ["a.jpg"] and rec.product.extra == {"back": "b.jpg", "side": "c.jpg"}
    with pytest.raises(SourceError, match=r"'nope'.*images"):
        list(read_csv(path, {"id": "sku", "images": "nope"}))
    with pytest.raises(SourceError, match="unknown field"):
        list(read_csv(path, {"colour_name": "pic"}))


def test_duplicate_ids_are_one_product_and_first_values_win(tmp_path: Path) -> None:
    text = "id,title,brand,image,season\n1,First,,a.jpg,\n2,Other,X,z.jpg,Fall\n"
    text += "1,,Acme,b.jpg,Summer\n1,Later,Zed,a.jpg,\n"
    recs = list(read_csv(_write(tmp_path / "d.csv", text)))
    assert [r.product.id for r in recs] == ["1", "2"]
    p = recs[0].product
    assert (p.title, p.brand, p.extra) == ("First", "Acme", {"season": "Summer"})
    assert _names(recs[0]) == ["a.jpg", "b.jpg"]


def test_product_type_paths_fill_only_missing_fields(tmp_path: Path) -> None:
    text = (
        "id,category,product_type\n"
        "a,,Apparel > Topwear > Tshirts\n"
        "b,Men,Apparel > Bottomwear > Trousers > Jeans\n"
        "c,,Apparel > Shoes\n"
        "d,,Sandals\n"
    )
    recs = _by_id(_write(tmp_path / "t.csv", text))
    got = {pid: (r.product.category, r.product.subcategory, r.product.article_type) for pid, r in recs.items()}
    assert got == {
        "a": ("Apparel", "Topwear", "Tshirts"),
        "b": ("Men", "Trousers", "Jeans"),
        "c": ("Apparel", None, "Shoes"),
        "d": (None, None, "Sandals"),
    }
    assert recs["b"].product.extra["product_type"] == "Apparel > Bottomwear > Trousers > Jeans"


# --- values -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.99", (29.99, None)),
        ("29.99 USD", (29.99, "USD")),
        ("USD 29.99", (29.99, "USD")),
        ("$29.99", (29.99, "USD")),
        ("$1,299.00", (1299.0, "USD")),
        ("1.299,00 EUR", (1299.0, "EUR")),
        ("1 299,00 €", (1299.0, "EUR")),
        ("£12", (12.0, "GBP")),
        ("29,99", (29.99, None)),
        ("", (None, None)),
    ],
)
def test_price_formats(text: str, expected: tuple[float | None, str | None]) -> None:
    assert parse_price(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("abc", "not a number"), ("USD", "not a number"), ("nan", "finite")])
def test_bad_prices(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_price(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in stock", True), ("in_stock", True), ("yes", True), ("TRUE", True), ("1", True), ("12", True),
        ("out of stock", False), ("out_of_stock", False), ("preorder", False), ("backorder", False),
        ("no", False), ("false", False), ("0", False), ("-3", False), ("", None),
    ],
)  # fmt: skip
def test_stock_values(text: str, expected: bool | None) -> None:
    assert parse_stock(text) is expected


def test_plain_stock_column_and_a_bad_value(tmp_path: Path) -> None:
    text = "id,quantity,price\na,3,1\nb,0,2\nc,yes,3\nd,some,4\ne,,oops\nf,,\n"
    recs = _by_id(_write(tmp_path / "s.csv", text))
    assert {pid: r.product.in_stock for pid, r in recs.items() if r.error is None} == {
        "a": True, "b": False, "c": True, "f": None,
    }  # fmt: skip
    assert recs["d"].error is not None and recs["d"].error.startswith("line 5: stock 'some'")
    assert recs["e"].error == "line 6: price 'oops' is not a number" and recs["e"].product.id == "e"


def test_shopify_stock_when_inventory_is_not_tracked(tmp_path: Path) -> None:
    text = (
        "Handle,Variant SKU,Variant Inventory Tracker,Variant Inventory Qty,Variant Price\n"
        "a,A1,,0,10\n"  # not tracked: always sellable
        "b,B1,shopify,0,10\nb,B2,shopify,,12\n"  # a count missing: unknown
        "c,C1,shopify,x,5\n"
    )
    recs = _by_id(_write(tmp_path / "s.csv", text))
    assert (recs["a"].product.in_stock, recs["b"].product.in_stock) == (True, None)
    assert recs["b"].product.price == 10.0
    assert recs["c"].error == "line 5: inventory 'x' is not a whole number"


def test_split_pictures() -> None:
    assert split_pictures('["a.jpg", "b.jpg"]') == ["a.jpg", "b.jpg"]
    assert split_pictures('[{"url": "https://x/a.jpg"}]') == ["https://x/a.jpg"]
    assert split_pictures("a.jpg | b.jpg") == ["a.jpg", "b.jpg"]
    assert split_pictures("my, file.jpg") == ["my, file.jpg"]  # "my" is no picture: one path


def test_a_row_without_id_stops_after_the_products_before_it(tmp_path: Path) -> None:
    rows = read_csv(_write(tmp_path / "b.csv", "id,image\nok1,a.jpg\n ,b.jpg\nok1,c.jpg\nok2,d.jpg\n"))
    first = next(rows)
    assert first.product.id == "ok1" and _names(first) == ["a.jpg", "c.jpg"]  # the whole file was read
    with pytest.raises(SourceError, match="line 3: product id"):
        next(rows)


def test_huge_html_body_is_read(tmp_path: Path) -> None:
    body = "<p>" + "x" * 300_000 + "</p>"
    rec = next(read_csv(_write(tmp_path / "h.csv", f'Handle,Title,Body (HTML)\nh,T,"{body}"\n')))
    assert len(rec.product.extra["description"]) == 300_000


# --- folders ----------------------------------------------------------------------------------------------
def _pic(path: Path, name: str = "10003.jpg") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(IMAGES / name, path)


def test_numbered_pictures_in_a_folder_are_one_product(tmp_path: Path) -> None:
    for name in ("ID.jpg", "ID_3.jpg", "ID-2.jpg", "ID (4).jpg", "X.png", "IMG_0001.jpg", "IMG_0002.jpg", "Y_2.jpg"):
        _pic(tmp_path / "shoes" / name)
    recs = list(read_folder(tmp_path))
    assert [r.product.id for r in recs] == ["shoes/ID", "shoes/IMG_0001", "shoes/IMG_0002", "shoes/X", "shoes/Y_2"]
    assert _names(recs[0]) == ["ID.jpg", "ID-2.jpg", "ID_3.jpg", "ID (4).jpg"]
    assert recs[0].product.images == recs[0].sources and recs[0].product.category == "shoes"
    assert recs[0].product.title == "ID"


def test_a_folder_of_views_is_one_product(tmp_path: Path) -> None:
    product = ["shirts/ABC123/back.jpg", "shirts/ABC123/2.jpg", "shirts/ABC123/front.jpg", "shirts/ABC123/detail_2.jpg"]
    others = ["XYZ9/XYZ9_back.jpg", "XYZ9/XYZ9.jpg", "shoes/a.jpg", "shoes/1.jpg", "mixed/P1/front.jpg"]
    for name in [*product, *others, "mixed/P1/x.jpg", "1.jpg", "2.jpg"]:  # top-level 1.jpg, 2.jpg: two products
        _pic(tmp_path / name)
    recs = {r.product.id: r for r in read_folder(tmp_path)}
    assert sorted(recs) == ["1", "2", "XYZ9", "mixed/P1/front", "mixed/P1/x", "shirts/ABC123", "shoes/1", "shoes/a"]
    shirt = recs["shirts/ABC123"]
    assert _names(shirt) == ["front.jpg", "2.jpg", "back.jpg", "detail_2.jpg"]
    assert (shirt.product.category, shirt.product.title) == ("shirts", "ABC123")
    assert _names(recs["XYZ9"]) == ["XYZ9.jpg", "XYZ9_back.jpg"] and recs["XYZ9"].product.category is None
    assert recs["shoes/a"].product.category == "shoes" and _names(recs["shoes/a"]) == ["a.jpg"]
    assert recs["mixed/P1/x"].product.category == "mixed"


def test_the_export_pictures_folder_is_six_products_of_two_pictures() -> None:
    recs = list(read_folder(IMAGES))
    assert [r.product.id for r in recs] == ["10003", "10016", "10051", "10127", "10196", "10438"]
    assert all(_names(r) == [f"{r.product.id}.jpg", f"{r.product.id}_2.jpg"] for r in recs)
