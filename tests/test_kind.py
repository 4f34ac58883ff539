"""The kind head, the catalogue's names for kinds, and the kind stage (issue 28): a photo whose nearest products
are mostly of another kind is ranked towards its own kind; a chosen kind ranks by that kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.catalog.kinds import KindSeen, kind_plan
from lookalike.catalog.ranking import QueryContext, kind_stage, rank
from lookalike.errors import InvalidQueryError, ModelLoadError
from lookalike.kind import (
    KindModel,
    KindPrior,
    catalogue_distribution,
    default_kind_model,
    kind_key,
    kind_order,
    matching_kind,
)
from lookalike.product import Hit, Product

DATA = Path(__file__).parent / "data"


def test_kind_names_fold_case_plurals_and_synonyms() -> None:
    assert kind_key("Dresses") == kind_key("dress") == "dress"
    assert kind_key("T-Shirts") == kind_key("Tshirts") == kind_key("tees") == "tshirt"
    assert kind_key("Track Pants") == kind_key("track pant") == kind_key("Joggers")
    assert kind_key("Watches") == kind_key("watch") and kind_key("Flip Flops") == kind_key("flip-flop")
    assert kind_key("Trousers") != kind_key("Jeans")
    assert matching_kind("dress", ["Tshirts", "Dresses"]) == "Dresses" and matching_kind("hat", ["Caps"]) is None


def test_the_heads_classes_are_given_to_the_catalogues_own_kinds() -> None:
    dist = catalogue_distribution(("Tshirts", "Dresses", "Jeans"), np.array([0.2, 0.6, 0.2]), ["T-Shirt", "Dress"])
    assert dist == pytest.approx({"T-Shirt": 0.25, "Dress": 0.75})  # renormalised: the shop sells no jeans
    assert catalogue_distribution(("Tshirts",), np.array([1.0]), ["Watches"]) == {}


def _model(classes: tuple[str, ...], dim: int = 4, embedding: str = "m") -> KindModel:
    # class i is read from coordinate i of the vector
    return KindModel(
        classes, np.eye(dim, len(classes), dtype=np.float32), np.zeros(len(classes)), embedding, dim, scale=10
    )


def test_kind_model_reads_views_saves_and_refuses_bad_files(tmp_path: Path) -> None:
    model = _model(("Tshirts", "Dresses"))
    views = np.array([[0.0, 1.0, 0, 0], [0.2, 0.9, 0, 0]], dtype=np.float32)
    p = model.predict(views)
    assert p.shape == (2,) and p.sum() == pytest.approx(1.0) and p[1] > 0.9
    model.save(tmp_path / "k.json")
    again = KindModel.load(tmp_path / "k.json")
    assert again.classes == model.classes and np.allclose(again.predict(views), p, atol=1e-5)
    (tmp_path / "bad.json").write_text('{"format": "lookalike-kind/1", "classes": ["a"], "weights": [[1, 2]]}')
    with pytest.raises(ModelLoadError):
        KindModel.load(tmp_path / "bad.json")
    with pytest.raises(ModelLoadError):
        KindModel(("a", "a"), np.zeros((4, 2)), np.zeros(2), "m", 4)


def test_the_shipped_head_reads_the_default_embedding_and_names_a_dress() -> None:
    model = default_kind_model()
    assert model is not None and model.fits("lookalike-fashion", 256)
    assert {"Dresses", "Jeans", "Tshirts", "Heels", "Skirts"} <= set(model.classes)


def _hits(spec: list[tuple[str, str, float]]) -> list[Hit]:
    return [Hit(i, s, Product(id=i, article_type=t)) for i, t, s in spec]


def test_a_photo_whose_neighbours_are_tshirts_is_ranked_towards_the_dress_it_shows() -> None:
    # eight T-shirts nearer than the two dresses: the nearest products' vote would keep T-shirts
    spec = [(f"t{i}", "Tshirts", 0.80 - 0.01 * i) for i in range(8)] + [
        ("d1", "Dresses", 0.70),
        ("d2", "Dresses", 0.69),
    ]
    ctx = QueryContext(k=4, candidates=10, kind=KindPrior({"Dresses": 0.8, "Tshirts": 0.2}, spread=False))
    top = [h.id for h in rank(ctx, [_hits(spec)], (kind_stage,))]
    assert top[:2] == ["d1", "d2"] and top[2:] == ["t0", "t1"]
    assert [h.score for h in rank(ctx, [_hits(spec)], (kind_stage,))][:1] == [0.70]  # the similarity is kept


def test_likely_kinds_keep_places_on_the_first_page() -> None:
    spec = [(f"t{i}", "Trousers", 0.9 - 0.01 * i) for i in range(12)] + [
        (f"j{i}", "Jeans", 0.6 - 0.01 * i) for i in range(5)
    ]
    prior = KindPrior({"Trousers": 0.55, "Jeans": 0.4, "Shorts": 0.05})
    order, _ = kind_order(np.array([s for _, _, s in spec]), [t for _, t, _ in spec], prior, k=10)
    page = [spec[i][1] for i in order[:10]]
    assert page.count("Jeans") == 4 and page.count("Trousers") == 6  # 0.4 x 10 places kept for jeans
    assert [spec[i][0] for i in order[:3]] == ["t0", "t1", "t2"]  # in key order within the page
    no_spread = KindPrior(prior.dist, spread=False)
    order, _ = kind_order(np.array([s for _, _, s in spec]), [t for _, t, _ in spec], no_spread, k=10)
    assert [spec[i][1] for i in order[:10]].count("Jeans") == 0


class _Host:
    """What :func:`kind_plan` reads of a catalogue."""

    def __init__(self, kinds: tuple[str, ...], extractor_name: str = "m", dim: int = 4) -> None:
        self.dim = dim
        self.kind_rank = True
        self._kinds = kinds
        self.extractor = type("E", (), {"name": extractor_name})()

    def article_types(self) -> tuple[str, ...]:
        return self._kinds


def test_kind_plan_reports_seen_and_used_and_checks_a_chosen_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    import lookalike.catalog.kinds as kinds

    monkeypatch.setattr(kinds, "default_kind_model", lambda: _model(("Tshirts", "Dresses", "Skirts")))
    host = _Host(("T-Shirt", "Dress", "Skirt"))
    views = np.array([[0.0, 1.0, 0.3, 0.0]], dtype=np.float32)
    prior, seen = kind_plan(host, views, None)  # type: ignore[arg-type]
    assert prior is not None and seen.used == "Dress" and seen.source == "detected"
    assert [k for k, _ in seen.seen] == ["Dress", "Skirt", "T-Shirt"]
    prior, seen = kind_plan(host, views, "skirts")  # type: ignore[arg-type]
    assert prior == KindPrior.chosen("Skirt") and seen.used == "Skirt" and seen.source == "chosen"
    assert seen.seen[0][0] == "Dress"  # what the picture looks like is still reported
    with pytest.raises(InvalidQueryError, match="no kind 'Hats'"):
        kind_plan(host, views, "Hats")  # type: ignore[arg-type]
    other = _Host(("T-Shirt", "Dress"), extractor_name="efficientnet-lite0")
    assert kind_plan(other, views, None) == (None, KindSeen())  # type: ignore[arg-type]
    host.kind_rank = False
    assert kind_plan(host, views, None)[0] is None  # type: ignore[arg-type]


# --- through a real catalogue (lite0 vectors; a stub head that reads them), the REST API and the CLI -------------
PHOTOS = DATA / "photos"


@pytest.fixture()
def jeans_head(monkeypatch: pytest.MonkeyPatch) -> KindModel:
    """A head for the lite0 catalogues of the tests that sees jeans in every picture (a bias, no weights): the
    nearest products of the T-shirt photo are T-shirts, the head says jeans."""
    import lookalike.catalog.kinds as kinds

    classes = ("Tshirts", "Jeans", "Casual Shoes", "Handbags", "Watches")
    bias = np.array([0.0, 0.5, 0.4, 0.0, 0.0], dtype=np.float32)  # P: jeans 0.72, casual shoes 0.26
    head = KindModel(classes, np.zeros((1280, 5), np.float32), bias, "efficientnet-lite0", 1280, scale=10)
    monkeypatch.setattr(kinds, "default_kind_model", lambda: head)
    return head


def test_a_catalogue_ranks_the_kind_the_head_sees_over_the_nearest_products(built_catalog, jeans_head) -> None:
    photo = PHOTOS / "tshirt.jpg"
    built_catalog.kind_rank = False
    before = built_catalog.search_result(photo, k=5)
    assert before.kind is not None and before.kind.used is None and before.kind.seen == []
    assert [h.product.article_type for h in before.hits[:3]] == ["Tshirts"] * 3  # the nearest products
    built_catalog.kind_rank = True
    try:
        result = built_catalog.search_result(photo, k=5)
    finally:
        built_catalog.kind_rank = True
    kinds = [h.product.article_type for h in result.hits]
    assert kinds[:3] == ["Jeans"] * 3  # every jeans the catalogue has, first
    assert "Casual Shoes" in kinds  # a likely second kind keeps a place on the page
    assert result.kind is not None and result.kind.used == "Jeans" and result.kind.source == "detected"
    assert result.kind.seen[0][0] == "Jeans" and result.kind.seen[0][1] > 0.7
    assert all(h.score <= 1.0 for h in result.hits)  # hits keep their similarity; rank_score orders them
    # a batch ranks as single searches do
    batch = built_catalog.search_many_results([photo], k=5)[0]
    assert [h.id for h in batch.hits] == [h.id for h in result.hits] and batch.kind == result.kind


def test_a_chosen_kind_ranks_by_that_kind_for_photos_products_and_words(built_catalog, jeans_head) -> None:
    result = built_catalog.search_result(PHOTOS / "tshirt.jpg", k=3, kind="watch")
    assert [h.product.article_type for h in result.hits][:2] == ["Watches"] * 2  # the catalogue's two watches
    assert result.kind.used == "Watches" and result.kind.source == "chosen" and result.kind.seen[0][0] == "Jeans"
    more = built_catalog.search_result(product_id="13466", k=3, kind="Handbags")
    assert [h.product.article_type for h in more.hits] == ["Handbags"] * 3 and more.kind.seen == []
    words = built_catalog.search_result(text="black", k=3, kind="Casual Shoes")  # of what the words find
    assert words.hits[0].product.article_type == "Casual Shoes" and len(words.hits) == 3
    with pytest.raises(InvalidQueryError, match="no kind 'Dresses'"):
        built_catalog.search_result(PHOTOS / "tshirt.jpg", kind="Dresses")
    bad = built_catalog.search_many_results([PHOTOS / "tshirt.jpg"], kind="Dresses")[0]
    assert isinstance(bad, InvalidQueryError)


def test_the_api_and_cli_show_the_kinds_seen_and_take_a_kind(built_catalog, jeans_head, capsys) -> None:
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceSettings, create_app
    from tests.conftest import run_cli

    with TestClient(create_app(built_catalog.path, ServiceSettings(admin_token=None, kind_rank=False))) as off:
        with (PHOTOS / "tshirt.jpg").open("rb") as fh:
            r = off.post("/api/search", files={"image": ("t.jpg", fh, "image/jpeg")}, data={"k": "3"})
        assert r.status_code == 200 and r.json()["kind"] == {"seen": [], "used": None, "source": None}
    with TestClient(create_app(built_catalog.path, ServiceSettings(admin_token=None))) as client:
        with (PHOTOS / "tshirt.jpg").open("rb") as fh:
            r = client.post("/api/search", files={"image": ("t.jpg", fh, "image/jpeg")}, data={"k": "3", "kind": ""})
        assert r.status_code == 200, r.text
        kind = r.json()["kind"]
        assert kind["used"] == "Jeans" and kind["source"] == "detected" and kind["seen"][0]["kind"] == "Jeans"
        assert [h["product"]["article_type"] for h in r.json()["hits"]] == ["Jeans", "Jeans", "Casual Shoes"]
        with (PHOTOS / "tshirt.jpg").open("rb") as fh:
            r = client.post("/api/search", files={"image": ("t.jpg", fh, "image/jpeg")}, data={"kind": "watches"})
        assert r.status_code == 200 and r.json()["kind"]["used"] == "Watches"
        r = client.post("/api/search", json={"product_id": "13466", "k": 2, "kind": "Handbags"})
        assert r.status_code == 200 and {h["product"]["article_type"] for h in r.json()["hits"]} == {"Handbags"}
        assert r.json()["kind"] == {"seen": [], "used": "Handbags", "source": "chosen"}
        r = client.post("/api/search", json={"product_id": "13466", "kind": "Dresses"})
        assert r.status_code == 422 and "no kind 'Dresses'" in r.json()["detail"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "kind" in schema["SearchRequest"]["properties"] and "kind" in schema["SearchResponse"]["properties"]
    code, out, _ = run_cli(capsys, "search", built_catalog.path, PHOTOS / "tshirt.jpg", "-k", "3")
    assert code == 0 and "Looks like: Jeans" in out and "ranked by Jeans" in out
    code, out, _ = run_cli(capsys, "search", built_catalog.path, PHOTOS / "tshirt.jpg", "--kind", "Watches", "--json")
    assert code == 0 and '"used": "Watches"' in out and '"source": "chosen"' in out
    code, out, _ = run_cli(capsys, "search", built_catalog.path, PHOTOS / "tshirt.jpg", "--no-kind-rank")
    assert code == 0 and "Looks like" not in out
    code, _, err = run_cli(capsys, "search", built_catalog.path, PHOTOS / "tshirt.jpg", "--kind", "Dresses")
    assert code != 0 and "no kind 'Dresses'" in err
