"""``lookalike eval --task kind`` (EVALUATION.md task 5): pages with no product of the right kind, per label with
where they went, through the catalogue's own search; end to end on a tiny datasets tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.evaluate.kind_task import KindQuery, score_pages
from lookalike.product import Product
from tests.test_text_eval import tiny_root  # noqa: F401  (the fixture)


def _page(*kinds: str, colour: str = "Blue") -> list[Product]:
    return [Product(id=f"{k}{i}", article_type=k, colour=colour) for i, k in enumerate(kinds)]


def test_pages_with_no_right_kind_are_counted_per_label_with_where_they_went() -> None:
    dress = KindQuery(Path("d.jpg"), "Dress", frozenset({"Dresses"}), "blue")
    jeans = KindQuery(Path("j.jpg"), "Pants: jeans", frozenset({"Jeans"}), None)
    pages = [
        _page(*["Tshirts"] * 7, *["Kurtas"] * 3),  # a dress shown as T-shirts and kurtas: no right kind
        _page("Dresses", *["Tshirts"] * 9),
        _page(*["Jeans"] * 10, colour="Black"),
    ]
    s = score_pages([dress, dress, jeans], pages, ["Tshirts", "Dresses", "Jeans"])
    assert s["queries"] == 3 and s["none"] == 1 and s["none share"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["mP@10"] == pytest.approx((0 + 0.1 + 1.0) / 3, abs=1e-4)
    assert s["macroP@10"] == pytest.approx((0.05 + 1.0) / 2, abs=1e-4)  # per label first
    assert s["mP@1"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["per label"]["Dress"] == {
        "queries": 2,
        "P@10": 0.05,
        "none": 1,
        "misses went to": {"Tshirts": 7, "Kurtas": 3},
    }
    assert s["per label"]["Pants: jeans"]["none"] == 0 and s["per label"]["Pants: jeans"]["misses went to"] == {}
    assert s["type+colour mP@10"] == pytest.approx(0.05, abs=1e-4)  # the dresses' blue; jeans have no family
    assert s["looks-like right"] == pytest.approx(2 / 3, abs=1e-4)


def test_the_kind_task_runs_through_the_catalogue_and_the_cli_writes_it(
    tiny_root: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lookalike.cli import app

    out = tmp_path / "eval-kind"
    args = ["eval", "--task", "kind", "--datasets", str(tiny_root), "--cache-dir", str(tmp_path / "c")]
    try:
        app([*args, "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    written = json.loads((out / "kind.json").read_text())
    assert set(written) == {"photo-heldout", "photo-colour", "photo-colour-all", "settings"}
    every = written["photo-colour-all"]
    assert every["default"]["queries"] == 6 and every["vote"]["queries"] == 6
    for mode in ("default", "vote"):
        s = every[mode]
        assert 0.0 <= s["mP@10"] <= 1.0 and 0 <= s["none"] <= 6
        assert set(s["per label"]) == {"T-Shirt", "Shoes: sneakers"}
    assert every["default"]["looks-like right"] is not None  # the shipped head reads lookalike-fashion vectors
    assert every["vote"]["looks-like right"] is None  # the kind stage off: nothing seen
    printed = capsys.readouterr().out
    assert "The right kind (task 5)" in printed and "kind.json" in printed
