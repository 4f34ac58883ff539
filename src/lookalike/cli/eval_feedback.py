"""``lookalike eval --task feedback``: EVALUATION.md task 6, the simulated shopper who likes and dislikes."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.table import Table

from lookalike.cli.options import err, out

__all__ = ["eval_feedback"]


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
