"""What a new user hit (issue 22): a batch's searches equal the single searches, the number shown is the one
that orders the list, the help, the empty states."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import PHOTOS, PRODUCTS_CSV, PRODUCTS_DIR, run_cli

ROOT = Path(__file__).resolve().parents[1]
PHRASES = ["navy blue shirt for men", "red dress", "black leather shoes", "a watch", "navy blue shirt for men"]


def _shape(hits: list[Any]) -> list[tuple[Any, ...]]:
    """A result's hits as exact numbers: id, similarity, colour match, ranking figure, matched picture."""
    return [(h.id, h.score, h.colour_match, h.rank_score, h.matched_image, tuple(h.duplicates)) for h in hits]


@pytest.fixture(scope="module")
def fashion_catalog(tmp_path_factory: pytest.TempPathFactory):
    """The 16 test products in lookalike-fashion's space (the text tower's), with their titles."""
    from lookalike import Catalog, read_csv

    cat = Catalog.create(tmp_path_factory.mktemp("new-user") / "cat", extractor="lookalike-fashion")
    cat.ingest(read_csv(PRODUCTS_CSV), batch_size=8)
    yield cat
    cat.close()


# --- 1. a search gives the same answer whatever else is in its batch ---------------------------------
def test_the_text_tower_gives_a_phrase_one_vector_whatever_its_batch() -> None:
    from lookalike.text import default_text_encoder

    enc = default_text_encoder()
    alone = enc.encode(["navy blue shirt for men"])[0]
    for others in (["red dress"], ["a long white summer dress with flowers for women", "x"], []):
        batch = enc.encode(["navy blue shirt for men", *others])
        assert np.array_equal(batch[0], alone)
    assert np.array_equal(enc.encode(["red dress", "navy blue shirt for men"])[1], alone)


def test_a_batch_of_phrases_equals_its_single_searches(fashion_catalog) -> None:
    cat = fashion_catalog
    batch = cat.search_texts(PHRASES, k=8)
    for phrase, result in zip(PHRASES, batch, strict=True):
        single = cat.search_result(text=phrase, k=8)
        assert _shape(result.hits) == _shape(single.hits), phrase  # type: ignore[union-attr]
        assert (result.colour, result.colour_source) == (single.colour, single.colour_source)  # type: ignore[union-attr]
    again = cat.search_texts(list(reversed(PHRASES)), k=8)
    assert [_shape(r.hits) for r in again] == [_shape(r.hits) for r in reversed(batch)]  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["lookalike-fashion", "lookalike-fashion-fp32"])
def test_a_batch_of_pictures_equals_its_single_searches(tmp_path: Path, model: str) -> None:
    """Pictures too, on the INT8 default and on the FP32 model (whose rows depend on their place in a batch
    of the model): each query's views run as one batch, as a single search runs them."""
    from lookalike import Catalog, read_csv

    pictures = sorted((PRODUCTS_DIR / "images").glob("*.jpg"))[:5] + sorted(PHOTOS.glob("*.jpg"))
    with Catalog.create(tmp_path / "cat", extractor=model) as cat:
        cat.ingest(read_csv(PRODUCTS_CSV), batch_size=8)
        batch = cat.search_many_results(pictures, k=6)
        for picture, result in zip(pictures, batch, strict=True):
            single = cat.search_result(picture, k=6)
            assert _shape(result.hits) == _shape(single.hits), picture.name  # type: ignore[union-attr]
            seen = [getattr(r.detected, "family", None) for r in (result, single)]  # type: ignore[union-attr]
            assert seen[0] == seen[1]


# --- 3. the number shown is the one that orders the list ---------------------------------------------
@pytest.fixture(scope="module")
def cli_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 16 test products, ingested through the command (the default model)."""
    from lookalike.cli import main

    path = tmp_path_factory.mktemp("cli") / "cat"
    old, sys.argv = sys.argv, ["lookalike", "ingest", str(path), "--csv", str(PRODUCTS_CSV), "-q"]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        sys.argv = old
    return path


def test_json_hits_carry_the_ranking_figure_the_similarity_and_the_product(cli_catalog: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "search", cli_catalog, PHOTOS / "tshirt.jpg", "--top", "5", "--json")
    assert code == 0
    hits = json.loads(out)["hits"]
    assert len(hits) == 5 and [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    for h in hits:
        assert {"id", "rank_score", "score", "colour_match", "matched_image", "picture", "title", "article_type",
                "colour", "gender", "price", "brand", "in_stock"} <= set(h)  # fmt: skip
        assert h["title"] and h["picture"]
    order = [h["rank_score"] for h in hits]
    assert order == sorted(order, reverse=True)  # the list is ordered by rank_score
    assert any(h["colour_match"] is not None for h in hits)  # the colour stage ran: rank_score != score
    code, out, _ = run_cli(capsys, "search", cli_catalog, PHOTOS / "tshirt.jpg", "-k", "5", "--json", "--compact")
    compact = json.loads(out)["hits"]
    assert [set(h) for h in compact] == [{"id", "score"}] * 5  # today's shape
    assert [(h["id"], h["score"]) for h in compact] == [(h["id"], h["score"]) for h in hits]


def test_the_table_shows_the_figure_that_orders_it_and_the_similarity(cli_catalog: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "search", cli_catalog, PHOTOS / "tshirt.jpg", "--k", "4", "--json")
    hits = json.loads(out)["hits"]
    code, out, _ = run_cli(capsys, "search", cli_catalog, PHOTOS / "tshirt.jpg", "--k", "4")
    assert code == 0
    header = next(line for line in out.splitlines() if "similarity" in line)
    assert header.index("score") < header.index("similarity")
    rows = [line for line in out.splitlines() if line.strip().startswith(("│ 1 ", "│ 2 ", "│ 3 ", "│ 4 "))]
    assert len(rows) == 4
    for row, hit in zip(rows, hits, strict=True):
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[1] == f"{hit['rank_score']:.3f}" and cells[2] == f"{hit['score']:.3f}"


def test_in_stock_is_a_search_filter(cli_catalog: Path, capsys, monkeypatch) -> None:
    from lookalike.catalog import Catalog

    seen: list[Any] = []
    real = Catalog.search_result

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("filters"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Catalog, "search_result", spy)
    code, _, err = run_cli(capsys, "search", cli_catalog, "--text", "shirt", "--in-stock", "-k", "3")
    assert code == 0, err
    assert seen and seen[-1].in_stock is True
    code, _, _ = run_cli(capsys, "search", cli_catalog, "--text", "shirt", "-k", "3")
    assert seen[-1].in_stock is None


# --- 5. help -----------------------------------------------------------------------------------------
def test_search_help_reads_right(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run_cli(capsys, "search", "--help")
    assert code == 0
    assert "Usage: lookalike search [OPTIONS] CATALOG [QUERY]" in out
    assert "{catalog}" not in out and "<bool>" not in out
    assert "--top" in out and "-k" in out and "--in-stock" in out
    assert "with --text: one phrase" not in out and "with --phrases: phrases" in out
    assert "Examples:" in out and "$ lookalike search my-catalog photo.jpg" in out


@pytest.mark.parametrize(
    "command",
    ["ingest", "search", "info", "delete", "migrate", "eval", "train", "train-segmenter", "train-colour", "serve",
     "models", "models export", "models add", "models remove", "models quantize"],
)  # fmt: skip
def test_every_command_has_examples_and_no_bool_hint(command: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run_cli(capsys, *command.split(), "--help")
    assert code == 0
    assert "Examples:" in out and out.count(f"$ lookalike {command}") >= 1
    assert "<bool>" not in out and "{" not in out.split("\n", 3)[1]  # the usage line: no {catalog}


def test_command_summaries_are_one_line_each(capsys, monkeypatch) -> None:
    """A docstring's wrapped first paragraph is one sentence in ``lookalike --help``, wrapped by the table."""
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    line = next(ln for ln in out.splitlines() if "train-segmenter" in ln)
    assert "held-out composites (test-split products), export ONNX." in line
    code, out, _ = run_cli(capsys, "models", "--help")
    assert "'lookalike[torch]'" in out  # not eaten as Rich markup


# --- 6. empty states ---------------------------------------------------------------------------------
def test_an_empty_folder_has_nothing_to_add(tmp_path: Path, capsys) -> None:
    (tmp_path / "pictures").mkdir()
    code, out, err = run_cli(capsys, "ingest", tmp_path / "cat", "--images", tmp_path / "pictures")
    assert code == 0, err
    assert "nothing to add" in out and not err
    header = tmp_path / "products.csv"
    header.write_text("id,image,title\n")
    code, out, err = run_cli(capsys, "ingest", tmp_path / "cat", "--csv", header)
    assert code == 0 and "nothing to add" in out


def test_searching_an_empty_catalogue_says_it_is_empty_and_how_to_fill_it(tmp_path: Path, capsys) -> None:
    from lookalike import Catalog

    Catalog.create(tmp_path / "cat").close()
    for args in (["--text", "red dress"], [PHOTOS / "tshirt.jpg"]):
        code, out, err = run_cli(capsys, "search", tmp_path / "cat", *args)
        assert code == 0, err
        assert "is empty" in out and "lookalike ingest" in out and "filters" not in out
    code, out, err = run_cli(capsys, "search", tmp_path / "cat", "--text", "red dress", "--json")
    assert json.loads(out)["hits"] == [] and "is empty" in err


def test_no_match_with_filters_says_so(cli_catalog: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "search", cli_catalog, "--text", "shirt", "--brand", "No Such Brand")
    assert code == 0 and "no products match these filters" in out


# --- 8. ingest logs progress when no bar is drawn ------------------------------------------------------
def test_ingest_logs_progress_lines_when_its_output_is_not_a_terminal(tmp_path: Path, capsys, monkeypatch) -> None:
    from lookalike.cli import catalog_cmds

    monkeypatch.setattr(catalog_cmds, "LOG_EVERY", 5)
    code, _, err = run_cli(capsys, "ingest", tmp_path / "cat", "--csv", PRODUCTS_CSV, "--batch-size", "4")
    assert code == 0
    lines = [ln for ln in err.splitlines() if ln.startswith("ingest: ")]
    assert len(lines) >= 2 and "of 16 products" in lines[0]
    code, _, err = run_cli(capsys, "ingest", tmp_path / "cat2", "--csv", PRODUCTS_CSV, "--batch-size", "4", "-q")
    assert code == 0 and "ingest: " not in err


# --- 7. the README's image-URL example runs on this machine -------------------------------------------
def test_the_readme_url_example_runs_without_the_internet(cli_catalog: Path, capsys) -> None:
    """The README serves pictures with ``python -m http.server`` and searches one by its localhost URL: the same
    folder, served here on a free port, and the same command (on the test catalogue) finds products."""
    import functools
    import shlex
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    lines = (ROOT / "README.md").read_text().splitlines()
    assert not [line for line in lines if "shop.example" in line]
    serve = shlex.split(next(line for line in lines if "-m http.server" in line), comments=True)
    search = shlex.split(next(line for line in lines if "search" in line and "http://localhost" in line), comments=True)
    folder, port = ROOT / serve[serve.index("-d") + 1], serve[3]

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            args = [a.replace(f":{port}/", f":{server.server_port}/") for a in search[3:]]
            code, out, err = run_cli(capsys, "search", cli_catalog, *args, "--json")
        finally:
            server.shutdown()
    assert code == 0, err
    assert json.loads(out)["hits"]


def test_models_says_how_a_hub_model_becomes_available(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    from lookalike.extractors import extractor_spec, list_extractors

    specs = [extractor_spec(name) for name in list_extractors()]
    missing = any(spec.kind == "hub" and not spec.available for spec in specs)
    assert ("--model clip:/path/to/folder" in out and "HF_HUB_OFFLINE=1" in out) == missing


# --- 8. small -------------------------------------------------------------------------------------------
def test_the_licence_is_an_spdx_string() -> None:
    """A ``license = {text = ...}`` table makes setuptools warn on every install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert not [c for c in project["project"].get("classifiers", []) if c.startswith("License ::")]
