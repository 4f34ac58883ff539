"""The README's examples run as written: its Python snippet and its ``lookalike search`` / ``lookalike info``
lines on the demo catalogue, against a small catalogue built from ``data/demo`` laid out as the README
expects (``data/demo/...`` and ``.lookalike/demo-catalog`` under the working directory)."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO = ROOT / "data" / "demo"
DEMO_CATALOG = ".lookalike/demo-catalog"
# The demo subset the tests build: the first 60 products and every dress. The ids the README names must be in it.
SUBSET_ROWS = 60
SUBSET_TYPES = ("Dresses",)


def _blocks(lang: str) -> list[str]:
    """The README's fenced code blocks in ``lang``, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def _shell_lines() -> list[str]:
    """Each command of the README's bash blocks, continuation lines joined, comments left on."""
    lines: list[str] = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                lines.append(line.strip())
    return lines


def _argv(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def _public_url(argv: list[str]) -> bool:
    hosts = [m.group(1) for a in argv if (m := re.match(r"https?://([^/:]+)", a))]
    return any(h not in ("127.0.0.1", "::1") for h in hosts)


def _demo_commands() -> list[list[str]]:
    """``lookalike search`` / ``lookalike info`` on the demo catalogue, but for those fetching a public URL."""
    cmds = []
    for line in _shell_lines():
        argv = _argv(line)
        on_demo = argv[:1] == ["lookalike"] and argv[1:2] in (["search"], ["info"]) and argv[2:3] == [DEMO_CATALOG]
        if on_demo and not _public_url(argv):
            cmds.append(argv[1:])
    return cmds


def _file_makers() -> list[str]:
    """The README's shell lines that write a file under ``.lookalike/`` for a command to read."""
    return [
        line for line in _shell_lines() if re.search(r">\s*\.lookalike/\S+", line) and _argv(line)[0] != "lookalike"
    ]


def _subset() -> list[dict[str, str]]:
    with (DEMO / "products.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for i, r in enumerate(rows) if i < SUBSET_ROWS or r["article_type"] in SUBSET_TYPES]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with ``data/demo`` (the subset's CSV, the real pictures and query photos) and
    ``.lookalike/demo-catalog`` built from it, as ``make demo`` leaves the repository."""
    import lookalike

    root = tmp_path_factory.mktemp("readme")
    data = root / "data" / "demo"
    data.mkdir(parents=True)
    (data / "images").symlink_to(DEMO / "images")
    (data / "queries").symlink_to(DEMO / "queries")
    rows = _subset()
    with (data / "products.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # the model named, not the preferred one: an INT8 variant in the user's model folder must not be used
    with lookalike.Catalog.create(root / DEMO_CATALOG, extractor="lookalike-fashion") as cat:
        report = cat.ingest(lookalike.read_csv(data / "products.csv"))
    assert report.added == len(rows) and not report.failed
    for line in _file_makers():
        subprocess.run(["bash", "-c", line], cwd=root, check=True, timeout=30)
    return root


def test_the_readme_has_the_examples_this_file_checks():
    cmds = _demo_commands()
    flags = {a for argv in cmds for a in argv if a.startswith("--")}
    assert len(cmds) >= 10 and {"--product", "--batch", "--text", "--phrases", "--gender"} <= flags
    assert any(argv[0] == "info" for argv in cmds)
    assert len(_blocks("python")) == 1 and len(_file_makers()) >= 2


def test_the_ids_the_readme_names_are_in_the_test_subset():
    ids = {r["id"] for r in _subset()}
    named = {argv[argv.index("--product") + 1] for argv in _demo_commands() if "--product" in argv}
    named |= set(re.findall(r'product_id="([^"]+)"', _blocks("python")[0]))
    assert named and named <= ids


@pytest.mark.parametrize("argv", _demo_commands(), ids=lambda argv: " ".join(argv)[:70])
def test_readme_command_runs_on_the_demo_catalogue(argv, demo_root, capsys, monkeypatch):
    monkeypatch.chdir(demo_root)
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, f"lookalike {shlex.join(argv)}: {err}"
    assert "no products match" not in out + err
    if argv[0] == "info" and "--json" in argv:
        data = json.loads(out)  # one JSON document
        assert data["products"] > 0 and "duplicates" in data
    elif "--json" in argv:
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert lines and all(line["hits"] for line in lines)
        if "--batch" in argv:
            batch = Path(argv[argv.index("--batch") + 1])
            assert len(lines) == len((demo_root / batch).read_text().split("\n")) - 1  # one line per query
    elif argv[0] == "search":
        assert re.search(r"^\S*\s*1 .*\d\.\d{3}", out, flags=re.M), out  # a results table with a first hit


def test_readme_python_snippet_runs(demo_root, capsys, monkeypatch):
    monkeypatch.chdir(demo_root)
    code = compile(_blocks("python")[0], str(README), "exec")
    exec(code, {"__name__": "readme"})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{len(_subset())} []"  # every product added, none failed
    assert len(out) == 11 and all(re.match(r"\S+ \d\.\d+ \S", line) for line in out[1:])
    assert "10051" not in [line.split()[0] for line in out[1:]]  # more like this leaves the product out
