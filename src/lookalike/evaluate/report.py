"""Write evaluation results: JSON, a Markdown report and PNG charts (matplotlib, Agg backend).

Charts: a model comparison of every task's headline metrics, per-label P@k bars per task, and a grid
of example queries with their top results framed green (relevant) or red (not relevant). The charts
need matplotlib (``pip install matplotlib``); without it the JSON and Markdown are still written.
"""

from __future__ import annotations

import io
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.evaluate.harness import TaskResult
from lookalike.fsutil import atomic_write

__all__ = [
    "example_queries",
    "markdown_report",
    "plot_examples",
    "plot_model_comparison",
    "plot_per_label",
    "results_to_json",
    "write_report",
]

GOOD, BAD = "#2ca02c", "#d62728"
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def _tasks_in_order(results: Sequence[TaskResult]) -> list[str]:
    seen: list[str] = []
    for r in results:
        if r.task.name not in seen:
            seen.append(r.task.name)
    return seen


def _models_in_order(results: Sequence[TaskResult]) -> list[str]:
    seen: list[str] = []
    for r in results:
        if r.model not in seen:
            seen.append(r.model)
    return seen


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, fsync=False, mode=0o644)


# --- JSON and Markdown --------------------------------------------------------------------------------
def _git_revision() -> str | None:
    """The source tree's commit (with ``-dirty`` when it has changes), if it is a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def results_to_json(results: Sequence[TaskResult], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything measured, as plain JSON-able data."""
    import lookalike

    return {
        "settings": settings or {},
        "environment": {
            "lookalike": getattr(lookalike, "__version__", "?"),
            "git": _git_revision(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "results": [r.to_dict() for r in results],
    }


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"


def _throughput(r: TaskResult) -> str:
    n = sum(r.computed.values())
    secs = r.timings.get("gallery_embed", 0.0) + r.timings.get("queries_embed", 0.0)
    if n == 0:
        return "cached"
    return f"{n:,} img in {secs:.0f} s ({n / max(secs, 1e-9):.0f} img/s)"


def markdown_report(
    results: Sequence[TaskResult],
    settings: dict[str, Any] | None = None,
    charts: dict[str, str] | None = None,
) -> str:
    """A Markdown page: one table per task (headline metrics per model), per-label tables, charts."""
    settings = settings or {}
    charts = charts or {}
    lines = ["# lookalike search quality", ""]
    if settings.get("command"):
        lines += ["```", str(settings["command"]), "```", ""]
    for key in ("datasets", "k", "max_queries", "seed", "query_flip", "seconds"):
        if settings.get(key) is not None:
            lines.append(f"- {key}: {settings[key]}")
    revision = _git_revision()
    if revision:
        lines.append(f"- source: {revision}")
    lines.append("")
    if "compare" in charts:
        lines += [f"![model comparison]({charts['compare']})", ""]
    for task in _tasks_in_order(results):
        rows = [r for r in results if r.task.name == task]
        first = rows[0]
        k = first.k
        lines += [f"## {task}: {first.task.description}", ""]
        lines.append(f"{len(first.task.queries):,} queries, gallery of {len(first.task.gallery):,}.")
        if first.task.info.get("subsample"):
            sub = first.task.info["subsample"]
            lines.append(f"Queries subsampled: {sub['max_queries']} of {sub['of']} (seed {sub['seed']}).")
        lines.append("")
        heads = list(first.headline())
        extra = [f"{c} mR@{k}" for c in first.criteria] + [f"{c} mnDCG@{k}" for c in first.criteria]
        lines.append("| model | " + " | ".join([*heads, *extra]) + " | embedding |")
        lines.append("|---" * (len(heads) + len(extra) + 2) + "|")
        for r in rows:
            vals = list(r.headline().values())
            vals += [r.criteria[c].metrics[f"mR@{k}"] for c in r.criteria]
            vals += [r.criteria[c].metrics[f"mnDCG@{k}"] for c in r.criteria]
            lines.append(f"| {r.model} | " + " | ".join(_fmt(v) for v in vals) + f" | {_throughput(r)} |")
        for c, cr in first.criteria.items():
            lines.append(
                f"\n{c}: random ranking scores mP@{k} {_fmt(cr.metrics[f'chanceP@{k}'])} (expected value); "
                f"the best achievable mP@{k} is {_fmt(cr.metrics[f'ceilingP@{k}'])}; "
                f"{cr.queries_without_relevant} queries have no relevant item."
            )
        lines.append("")
        crit = next(iter(first.criteria))
        labels = sorted(first.criteria[crit].per_label, key=lambda lab: -first.criteria[crit].label_counts[lab])
        shown = labels[:30]
        lines += [
            f"Per-label P@{k} ({crit}){'' if len(shown) == len(labels) else ', 30 largest labels'}:",
            "",
        ]
        lines.append("| label | queries | " + " | ".join(r.model for r in rows) + " |")
        lines.append("|---" * (len(rows) + 2) + "|")
        for lab in shown:
            vals = " | ".join(_fmt(r.criteria[crit].per_label[lab]) for r in rows)
            lines.append(f"| {lab} | {first.criteria[crit].label_counts[lab]} | {vals} |")
        lines.append("")
        for key in (f"per-label:{task}", *(f"examples:{task}:{r.model}" for r in rows)):
            if key in charts:
                lines += [f"![{key}]({charts[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- charts -------------------------------------------------------------------------------------------
def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Save a figure as a palette PNG (small files, charts look the same)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    _pyplot().close(fig)
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    _atomic_write(path, out.getvalue())
    return path


def plot_model_comparison(results: Sequence[TaskResult], path: str | os.PathLike[str]) -> Path:
    """Grouped bars: each task's headline metrics, one bar per model, values written on the bars."""
    plt = _pyplot()
    tasks, models = _tasks_in_order(results), _models_in_order(results)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks) + 0.6, 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = {r.model: r for r in results if r.task.name == task}
        metrics = list(next(iter(rows.values())).headline())
        width = 0.8 / len(models)
        x = np.arange(len(metrics))
        for i, model in enumerate(models):
            if model not in rows:
                continue
            vals = [rows[model].headline()[m] for m in metrics]
            bars = ax.bar(
                x + (i - (len(models) - 1) / 2) * width,
                vals,
                width,
                label=model,
                color=_PALETTE[i % len(_PALETTE)],
            )
            for bar, v in zip(bars, vals, strict=True):
                ax.text(
                    bar.get_x() + bar.get_width() / 2,
                    v + 0.01,
                    f"{v:.2f}",
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    rotation=90 if len(models) > 2 else 0,
                )
        first = next(iter(rows.values()))
        marked = False
        for j, metric in enumerate(metrics):  # random ranking's expected P@k and P@1
            crit, _, name = metric.partition(" ")
            if name in (f"mP@{first.k}", "mP@1"):
                chance = first.criteria[crit].metrics[f"chanceP@{first.k}"]
                ax.hlines(
                    chance,
                    j - 0.45,
                    j + 0.45,
                    colors="black",
                    linestyles=":",
                    linewidth=1.2,
                    label=None if marked else "random ranking",
                )
                marked = True
        ax.set_xticks(x, [m.replace(" ", "\n") for m in metrics], fontsize=8)
        ax.set_ylim(0, 1.12)
        ax.set_title(f"{task} ({len(first.task.queries):,} queries)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = [], []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(5, len(labels)),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, Path(path))


def plot_per_label(
    results: Sequence[TaskResult],
    path: str | os.PathLike[str],
    criterion: str | None = None,
    max_labels: int = 30,
) -> Path:
    """Horizontal grouped bars of per-label P@k for one task (its largest ``max_labels`` labels)."""
    plt = _pyplot()
    if len(_tasks_in_order(results)) != 1:
        raise ValueError("plot_per_label takes the results of one task")
    first = results[0]
    crit = criterion or next(iter(first.criteria))
    counts = first.criteria[crit].label_counts
    labels = sorted(counts, key=lambda lab: (-counts[lab], lab))[:max_labels]
    models = _models_in_order(results)
    height = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.28 * len(labels) * max(1.0, len(models) / 2.5)))
    y = np.arange(len(labels))
    for i, model in enumerate(models):
        r = next(x for x in results if x.model == model)
        vals = [r.criteria[crit].per_label[lab] for lab in labels]
        ax.barh(
            y + (i - (len(models) - 1) / 2) * height,
            vals,
            height,
            label=f"{model} (macro {r.criteria[crit].metrics[f'macroP@{r.k}']:.3f})",
            color=_PALETTE[i % len(_PALETTE)],
        )
    ax.set_yticks(y, [f"{lab} ({counts[lab]})" for lab in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P@{first.k} ({crit})")
    chance = first.criteria[crit].metrics[f"chanceP@{first.k}"]
    ax.axvline(
        chance, color="black", linestyle=":", linewidth=1, label=f"random ranking, mean of all queries ({chance:.3f})"
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    more = "" if len(labels) == len(counts) else f", {len(labels)} largest of {len(counts)} labels"
    ax.set_title(f"{first.task.name}: P@{first.k} per query label (queries in brackets{more})", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, frameon=False)
    fig.tight_layout()
    return _save(fig, Path(path))


def example_queries(result: TaskResult, n: int = 6, seed: int = 0) -> list[int]:
    """``n`` query indices, one from each of the ``n`` largest query labels (seeded, model-independent)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(result.task.query_groups):
        groups.setdefault(g, []).append(i)
    order = sorted(groups, key=lambda g: (-len(groups[g]), g))
    picks = [int(rng.choice(groups[g])) for g in order[:n]]
    if len(picks) < n:  # fewer labels than examples: fill with other queries
        rest = [i for i in range(len(result.task.queries)) if i not in set(picks)]
        picks += [int(i) for i in rng.permutation(rest)[: n - len(picks)]]
    return picks


def _thumb(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    from lookalike.imaging.decode import load_image

    img = load_image(path, draft_size=size)
    img.thumbnail((size, size), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(canvas)


def plot_examples(
    result: TaskResult,
    path: str | os.PathLike[str],
    queries: Sequence[int] | None = None,
    n_results: int = 5,
    criterion: str | None = None,
    thumb: int = 112,
) -> Path:
    """A grid: each row a query and its top ``n_results``, framed green when relevant, red when not."""
    plt = _pyplot()
    crit = criterion or next(iter(result.criteria))
    rows = list(queries) if queries is not None else example_queries(result)
    labels = result.task.criterion(crit).gallery_labels
    relevance = result.criteria[crit].relevance
    cols = 1 + n_results
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.35 * cols, 1.55 * len(rows)), squeeze=False)
    for r, qi in enumerate(rows):
        ax = axes[r][0]
        ax.imshow(_thumb(result.task.queries.paths[qi], thumb))
        ax.set_title(f"query: {result.task.query_groups[qi]}"[:24], fontsize=7, fontweight="bold")
        for spine in ax.spines.values():
            spine.set_color("#333333")
            spine.set_linewidth(2)
        for c in range(n_results):
            ax = axes[r][c + 1]
            gi = int(result.top_indices[qi, c]) if c < result.top_indices.shape[1] else -1
            if gi < 0:
                ax.axis("off")
                continue
            ax.imshow(_thumb(result.task.gallery.paths[gi], thumb))
            ok = bool(relevance[qi, c])
            ax.set_title(f"{c + 1}. {labels[gi]}"[:24], fontsize=6.5, color=GOOD if ok else BAD)
            for spine in ax.spines.values():
                spine.set_color(GOOD if ok else BAD)
                spine.set_linewidth(3.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{result.model} on {result.task.name}: top {n_results} ({crit}; green = relevant)", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path), dpi=90)


# --- everything ---------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text).strip("-")


def write_report(
    results: Sequence[TaskResult],
    out_dir: str | os.PathLike[str],
    settings: dict[str, Any] | None = None,
    examples: int = 6,
    seed: int = 0,
    charts: bool = True,
) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and the PNG charts into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    rel: dict[str, str] = {}
    if charts and results:
        try:
            _pyplot()
        except ImportError:
            charts = False
            settings = dict(settings or {}, charts="skipped: matplotlib is not installed")
    if charts and results:
        written["compare"] = plot_model_comparison(results, out / "compare.png")
        for task in _tasks_in_order(results):
            rows = [r for r in results if r.task.name == task]
            written[f"per-label:{task}"] = plot_per_label(rows, out / f"per-label-{_slug(task)}.png")
            if examples > 0:
                picks = example_queries(rows[0], examples, seed)
                for r in rows:
                    key = f"examples:{task}:{r.model}"
                    written[key] = plot_examples(r, out / f"examples-{_slug(task)}-{_slug(r.model)}.png", picks)
        rel = {key: p.name for key, p in written.items()}
    data = results_to_json(results, settings)
    _atomic_write(out / "results.json", (json.dumps(data, indent=2, default=str) + "\n").encode())
    written["json"] = out / "results.json"
    _atomic_write(out / "report.md", markdown_report(results, settings, rel).encode())
    written["markdown"] = out / "report.md"
    return written
