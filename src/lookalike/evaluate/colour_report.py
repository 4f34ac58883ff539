"""Reports of the colour tasks (EVALUATION.md task 3): JSON, Markdown and two charts per task — per-family
bars, and an example grid marking each result's kind and colour right or wrong."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.colour.families import FAMILIES
from lookalike.evaluate.colour_metrics import relevance_masks
from lookalike.evaluate.colour_task import ColourTask, ColourTaskResult
from lookalike.evaluate.report import _atomic_write, _pyplot, _save, _slug, _thumb

__all__ = ["colour_markdown", "plot_colour_examples", "plot_per_family", "write_colour_report"]

GOOD, HALF, BAD = "#2e7d32", "#ef6c00", "#c62828"


def colour_markdown(results: Sequence[ColourTaskResult], settings: dict[str, Any] | None = None) -> str:
    lines = ["# Colour-true search (EVALUATION.md task 3)", ""]
    if settings and settings.get("command"):
        lines += [f"Command: `{settings['command']}`", ""]
    lines += [
        "| task | model | type+colour mP@10 | fine type mP@10 | colour share | best | without colour stage |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, w = r.scores, r.without_colour
        lines.append(
            f"| {r.task} | {r.model} | {s.type_colour:.3f} | {s.fine_type:.3f} | {s.colour_share:.3f} | {s.best:.3f} "
            f"| {w.type_colour:.3f} / {w.fine_type:.3f} / {w.colour_share:.3f} |"
        )
    for r in results:
        if r.exact is not None and r.exact_without is not None:
            lines += [
                "",
                f"{r.task} · {r.model}: type + the very same colour name (EVALUATION.md task 1's type+colour) "
                f"mP@10 {r.exact.type_colour:.3f} (without the colour stage {r.exact_without.type_colour:.3f}; "
                f"best achievable {r.exact.best:.3f}).",
            ]
    for r in results:
        lines += ["", f"## {r.task} · {r.model}: type+colour P@10 per colour family", ""]
        lines += ["| family | queries | with colour stage | without |", "|---|---|---|---|"]
        for fam, v in r.scores.per_family.items():
            lines.append(
                f"| {fam} | {r.scores.family_counts[fam]} | {v:.3f} | {r.without_colour.per_family.get(fam, 0.0):.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_per_family(result: ColourTaskResult, path: str | os.PathLike[str]) -> Path:
    """Bars: type+colour P@10 per colour family, with and without the colour stage."""
    plt = _pyplot()
    fams = list(result.scores.per_family)
    x = np.arange(len(fams))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(fams) + 1.5), 3.2))
    ax.bar(x - 0.2, [result.without_colour.per_family[f] for f in fams], 0.4, label="embedding only", color="#9e9e9e")
    ax.bar(x + 0.2, [result.scores.per_family[f] for f in fams], 0.4, label="with colour stage", color="#1565c0")
    ax.set_xticks(x, [f"{f}\n({result.scores.family_counts[f]})" for f in fams], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("type+colour P@10")
    ax.set_title(f"{result.model} on {result.task}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_colour_examples(
    result: ColourTaskResult, task: ColourTask, path: str | os.PathLike[str], n: int = 6, seed: int = 0, shown: int = 5
) -> Path:
    """A grid of ``n`` queries (seeded, varied families) with their top ``shown``: green frame = right kind and
    colour, orange = right kind, wrong colour, red = wrong kind."""
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    by_fam: dict[str, list[int]] = {}
    for i, f in enumerate(task.query_families):
        by_fam.setdefault(f, []).append(i)
    picks = [int(rng.choice(by_fam[f])) for f in sorted(by_fam, key=lambda f: -len(by_fam[f]))[:n]]
    right_type, right_both = relevance_masks(
        result.ranked[:, :shown], task.query_types, task.query_families, task.gallery_types, task.gallery_families
    )
    fig, axes = plt.subplots(len(picks), shown + 1, figsize=(1.35 * (shown + 1), 1.6 * len(picks)), squeeze=False)
    for r, qi in enumerate(picks):
        detected = FAMILIES[int(np.argmax(result.query_colours[qi]))]
        axes[r][0].imshow(_thumb(task.queries.paths[qi], 112))
        axes[r][0].set_title(f"{task.query_labels[qi]}, {task.query_families[qi]}\nseen: {detected}", fontsize=6.5)
        for c in range(shown):
            ax = axes[r][c + 1]
            gi = int(result.ranked[qi, c])
            if gi < 0:
                ax.axis("off")
                continue
            ax.imshow(_thumb(task.gallery.paths[gi], 112))
            multi = task.query_families[qi] == "multi"  # a patterned garment: its kind is all that counts
            colour = GOOD if right_both[qi, c] or (multi and right_type[qi, c]) else HALF if right_type[qi, c] else BAD
            ax.set_title(f"{task.gallery_types[gi]}, {task.gallery_families[gi]}"[:26], fontsize=6, color=colour)
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(3.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{result.model} on {result.task}: green = kind and colour, orange = kind only", fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path), dpi=90)


def write_colour_report(
    results: Sequence[tuple[ColourTaskResult, ColourTask]],
    out_dir: str | os.PathLike[str],
    settings: dict[str, Any] | None = None,
    examples: int = 6,
    seed: int = 0,
    charts: bool = True,
) -> dict[str, Path]:
    """Write ``colour-results.json``, ``colour-report.md`` and the charts into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if charts and results:
        try:
            _pyplot()
        except ImportError:
            charts = False
    if charts:
        for r, task in results:
            stem = f"{_slug(r.task)}-{_slug(r.model)}"
            written[f"per-family:{stem}"] = plot_per_family(r, out / f"colour-per-family-{stem}.png")
            if examples > 0:
                written[f"examples:{stem}"] = plot_colour_examples(
                    r, task, out / f"colour-examples-{stem}.png", examples, seed
                )
    data = {"settings": settings or {}, "results": [r.to_dict() for r, _ in results]}
    _atomic_write(out / "colour-results.json", (json.dumps(data, indent=2, default=str) + "\n").encode())
    written["json"] = out / "colour-results.json"
    _atomic_write(out / "colour-report.md", colour_markdown([r for r, _ in results], settings).encode())
    written["markdown"] = out / "colour-report.md"
    return written
