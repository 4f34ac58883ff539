"""``lookalike eval --task feedback`` (EVALUATION.md task 6): the simulated shopper's protocol, and the task end to
end on a tiny datasets tree shaped like ../shared/datasets."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lookalike.evaluate.feedback_task import Query, simulate
from lookalike.product import Hit, Product
from tests.test_text_eval import tiny_root  # noqa: F401  (the fixture)


class _Shop:
    """A catalogue stand-in: pages of fixed products per round, remembering what each search was told."""

    def __init__(self, pages: list[list[tuple[str, str, str]]]) -> None:
        self.pages = pages
        self.calls: list[tuple[list[str], list[str]]] = []

    def search_result(self, image: Any, k: int, positive: list[str], negative: list[str], **kw: Any) -> Any:
        self.calls.append((list(positive), list(negative)))
        page = self.pages[len(self.calls) - 1]
        return SimpleNamespace(hits=[Hit(i, 0.5, Product(id=i, article_type=t, colour=c)) for i, t, c in page[:k]])


def test_the_shopper_likes_the_right_kind_and_colour_and_judgements_accumulate() -> None:
    right, wrong_colour, wrong_kind = ("Jeans", "Navy Blue"), ("Jeans", "Black"), ("Trousers", "Blue")
    shop = _Shop(
        [
            [("a", *wrong_colour), ("b", *wrong_kind)],
            [("c", *right), ("a", *wrong_colour)],
            [("c", *right), ("d", *right)],
        ]
    )
    query = Query("q", path=Path("q.jpg"), types=frozenset({"Jeans"}), family="blue")
    scores = simulate(shop, [query], rounds=2, k=2)
    assert shop.calls == [([], []), ([], ["a", "b"]), (["c"], ["a", "b"])]
    assert scores.rounds == [0.0, 0.5, 1.0]  # a liked product shown again counts
    assert scores.none_first == 1 and scores.none_first_rounds == [0.0, 0.5, 1.0] and scores.all_first == 0


def test_round_zero_pages_are_reused_when_given() -> None:
    shop = _Shop([[("x", "Jeans", "Blue")]] * 3)
    first: dict[str, list[Hit]] = {}
    query = Query("q", product_id="p", types=frozenset({"Jeans"}), family="blue")
    simulate(shop, [query], rounds=1, k=1, first=first)
    simulate(shop, [query], rounds=1, k=1, first=first)
    assert len(shop.calls) == 3 and "q" in first  # round 0 searched once, round 1 twice


def test_the_feedback_task_runs_through_the_catalogues_search(tiny_root: Path, tmp_path: Path) -> None:  # noqa: F811
    from lookalike.evaluate.feedback_task import run_feedback_eval

    results = run_feedback_eval(tiny_root, tmp_path / "cache", k=5)
    for part in ("photos", "products"):
        s = results[part]
        assert s["queries"] > 0 and len(s["mP@k per round"]) == 3
        assert all(0.0 <= x <= 1.0 for x in s["mP@k per round"])
        assert s["mP@k per round"][2] >= s["mP@k per round"][0]  # liked products come back: never worse
    assert results["settings"]["rounds"] == 2


def test_cli_feedback_task_writes_its_json(tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    from lookalike.cli import app

    out = tmp_path / "eval-feedback"
    args = ["eval", "--task", "feedback", "--datasets", str(tiny_root), "--cache-dir", str(tmp_path / "c")]
    try:
        app([*args, "--out", str(out), "--max-queries", "4", "-k", "5"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    written = json.loads((out / "feedback.json").read_text())
    assert {"photos", "products", "settings"} <= set(written) and written["products"]["queries"] <= 4
    assert "round 2" in capsys.readouterr().out
