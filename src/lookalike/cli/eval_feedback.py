"""``lookalike eval --task feedback`` (task 6, the simulated shopper who likes and dislikes) and ``--task kind``
(task 5, the right kind): the tasks run through the catalogue's own search."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.table import Table

from lookalike.cli.options import err, out

__all__ = ["eval_feedback", "eval_kind"]


def eval_feedback(
    datasets: Path | None, cache_dir: Path, out_dir: Path, k: int, max_queries: int | None, quiet: bool
) -> None:
    """Run :func:`lookalike.evaluate.feedback_task.run_feedback_eval` on the held-out contributors' photos and
    the catalogue's test split ("more like this"; at most ``max_queries`` of them, evenly spread), print the
    rounds, write ``feedback.json``."""
    from lookalike.evaluate.feedback_task import catalogue_queries, run_feedback_eval

    every = 1
    if max_queries is not None:
        from lookalike.evaluate.datasets import catalog_rows, resolve_datasets_root

        _, rows = catalog_rows(resolve_datasets_root(datasets))
        every = max(1, math.ceil(len(catalogue_queries(rows)) / max(max_queries, 1)))
    say = None if quiet else (lambda msg: err.print(f"[dim]{msg}[/]"))
    results = run_feedback_eval(datasets, cache_dir, k=k, every=every, progress=say)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback.json").write_text(json.dumps(results, indent=2))
    table = Table(title=f"Feedback (task 6): type+colour mP@{k} per round", title_justify="left")
    for col in ("queries", "n", "round 0", "round 1", "round 2", "none right in round 0", "those: rounds 0/1/2"):
        table.add_column(col, justify="left" if col == "queries" else "right")
    names = {"photos": "held-out photos", "products": "more like this (test split)"}
    for name, label in names.items():
        if name not in results:
            continue
        s = results[name]
        rounds = s["mP@k per round"]
        hard = " / ".join(f"{x:.3f}" for x in s["mP@k per round, those with none in round 0"])
        none = f"{s['no relevant product in round 0']} ({s['share with none in round 0']:.0%})"
        table.add_row(label, str(s["queries"]), *(f"{x:.3f}" for x in rounds[:3]), none, hard)
    out.print(table)
    out.print(f"wrote {out_dir / 'feedback.json'}")


def eval_kind(datasets: Path | None, cache_dir: Path, out_dir: Path, max_queries: int | None, quiet: bool) -> None:
    """Run :func:`lookalike.evaluate.kind_task.run_kind_eval` (task 5: a page with no product of the right kind),
    print each set with and without the kind stage and the labels whose pages miss most, write ``kind.json``."""
    from lookalike.evaluate.kind_task import run_kind_eval

    say = None if quiet else (lambda msg: err.print(f"[dim]{msg}[/]"))
    results = run_kind_eval(datasets, cache_dir, max_queries=max_queries, progress=say)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "kind.json").write_text(json.dumps(results, indent=2))
    table = Table(title="The right kind (task 5): kind stage / nearest products' vote", title_justify="left")
    for col in ("set", "n", "no right kind", "kind mP@10", "mP@1", "macro P@10", "type+colour", "looks-like right"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, modes in results.items():
        if name == "settings":
            continue
        new, old = modes["default"], modes["vote"]

        def pair(key: str, fmt: str = "{:.3f}", new: dict = new, old: dict = old) -> str:
            a, b = new.get(key), old.get(key)
            return "-" if a is None or b is None else f"{fmt.format(a)} / {fmt.format(b)}"

        none = f"{new['none']} ({new['none share']:.0%}) / {old['none']} ({old['none share']:.0%})"
        table.add_row(name, str(new["queries"]), none, pair("mP@10"), pair("mP@1"), pair("macroP@10"),
                      pair("type+colour mP@10"), pair("looks-like right"))  # fmt: skip
    out.print(table)
    worst = Table(title="Pages with no right kind per label (kind stage / vote), where they went", title_justify="left")
    for col in ("set", "label", "n", "none", "misses went to (kind stage)"):
        worst.add_column(col)
    for name, modes in results.items():
        if name == "settings":
            continue
        for label, row in modes["default"]["per label"].items():
            before = modes["vote"]["per label"][label]["none"]
            if row["none"] or before:
                went = ", ".join(f"{k} {v}" for k, v in row["misses went to"].items())
                worst.add_row(name, label, str(row["queries"]), f"{row['none']} / {before}", went)
    out.print(worst)
    out.print(f"wrote {out_dir / 'kind.json'}")
