"""``lookalike eval`` (search quality, models side by side) and ``lookalike train`` (the fashion embedding)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lookalike.cli.options import DatasetsOpt, QuietOpt, err, interrupted, out, progress_shown, quiet_onnx_tools
from lookalike.errors import LookalikeError

__all__ = ["eval_", "train"]


_TASK_HELP = (
    "catalog, catalog-full, photo, photo-heldout (contributors lookalike-fashion never saw), "
    "photo-colour (task 3: kind and colour, held-out contributors), photo-colour-all (all 310 photos), "
    "catalog-colour (task 3's catalogue variant), all (every one of these), or text (task 4: words, through "
    "the catalogue's own search, and a held-out photo plus a colour word; not part of all), or feedback (task 6: a "
    "simulated shopper likes and dislikes for two rounds; not part of all), or kind (task 5: pages with no product "
    "of the right kind, with and without the kind stage; not part of all)."
)
_COLOUR_TASKS = ("photo-colour", "photo-colour-all", "catalog-colour")
_MODEL_HELP = "Extractor (repeatable); NAME@squash, NAME@center_crop, NAME@pad override its resize."


def eval_(
    task: Annotated[str, typer.Option("--task", "-t", help=_TASK_HELP)] = "all",
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help=_MODEL_HELP)] = None,
    datasets: DatasetsOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for JSON, Markdown, PNGs.")] = Path(
        "eval-output"
    ),
    max_queries: Annotated[int | None, typer.Option(help="At most N queries per task (seeded).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of --max-queries and the example queries.")] = 0,
    k: Annotated[int, typer.Option("--k", "-k", help="Cut-off rank of the metrics.")] = 10,
    queries: Annotated[Path | None, typer.Option("--queries", help="Your query CSV (image, label).")] = None,
    gallery: Annotated[Path | None, typer.Option("--gallery", help="Gallery CSV for --queries.")] = None,
    label_field: Annotated[str, typer.Option(help="Gallery column deciding relevance.")] = "article_type",
    exclude_self: Annotated[bool, typer.Option(help="--queries: never return the query's file.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the embedding cache.")] = False,
    examples: Annotated[int, typer.Option(help="Example queries per task in the PNG grids.")] = 6,
    charts: Annotated[bool, typer.Option(help="Draw the PNG charts (needs matplotlib).")] = True,
    batch_size: Annotated[int | None, typer.Option(help="Images per model batch.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding threads.")] = None,
    query_flip: Annotated[
        bool, typer.Option(help="Rank as a catalogue searches: each product scores the picture or its mirror image.")
    ] = True,
    quiet: QuietOpt = False,
) -> None:
    """Measure search quality (EVALUATION.md tasks or your own labelled set), models side by side."""
    import shlex
    import time

    from rich.progress import TaskID

    from lookalike.config import lookalike_home
    from lookalike.errors import InvalidQueryError
    from lookalike.evaluate import datasets as ds
    from lookalike.evaluate.colour_report import write_colour_report
    from lookalike.evaluate.colour_task import run_colour_evaluation
    from lookalike.evaluate.harness import EmbeddingCache, run_evaluation
    from lookalike.evaluate.report import write_report
    from lookalike.extractors import DEFAULT_EXTRACTOR

    if k <= 0:
        raise InvalidQueryError("--k must be positive")
    if task == "text":
        _eval_text(datasets, cache_dir or lookalike_home() / "eval-cache", out_dir, seed, k, quiet)
        return
    if task == "feedback":
        from lookalike.cli.eval_feedback import eval_feedback

        eval_feedback(datasets, cache_dir or lookalike_home() / "eval-cache", out_dir, k, max_queries, quiet)
        return
    if task == "kind":
        from lookalike.cli.eval_feedback import eval_kind

        eval_kind(datasets, cache_dir or lookalike_home() / "eval-cache", out_dir, max_queries, quiet)
        return
    if (queries is None) != (gallery is None):
        raise InvalidQueryError("--queries and --gallery go together")
    colour_names: list[str] = []
    if queries is not None and gallery is not None:
        tasks = [ds.custom_task(queries, gallery, label_field, exclude_self=exclude_self)]
    else:
        names = ["catalog", "photo", "photo-heldout", "catalog-full", *_COLOUR_TASKS] if task == "all" else [task]
        builders = {
            "catalog": lambda: ds.catalog_task(datasets, split="test"),
            "catalog-full": lambda: ds.catalog_task(datasets, split="all"),
            "photo": lambda: ds.photo_task(datasets),
            "photo-heldout": lambda: ds.photo_task(datasets, heldout_seed=0),
        }
        if any(n not in builders and n not in _COLOUR_TASKS for n in names):
            raise InvalidQueryError(f"--task is one of {_TASK_HELP} Got {task!r}")
        colour_names = [n for n in names if n in _COLOUR_TASKS]
        tasks = [builders[n]() for n in names if n in builders]
    tasks = [ds.subsample_queries(t, max_queries, seed) for t in tasks]
    model_names = list(dict.fromkeys(model or [DEFAULT_EXTRACTOR]))
    cache = EmbeddingCache(None if no_cache else (cache_dir or lookalike_home() / "eval-cache"))

    show = progress_shown(quiet)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
    )
    bars: dict[tuple[str, str, str], TaskID] = {}

    def on_progress(model_name: str, task_name: str, part: str, done: int, total: int) -> None:
        key = (model_name, task_name, part)
        if key not in bars:
            bars[key] = progress.add_task(f"{model_name} {task_name} {part}", total=total)
        progress.update(bars[key], completed=done)

    started = time.perf_counter()
    try:
        with progress:
            results = run_evaluation(tasks, model_names, k, cache, batch_size, workers, on_progress, query_flip)
            colour_results = run_colour_evaluation(
                colour_names, model_names, datasets, cache, on_progress, query_flip, k
            )
    except KeyboardInterrupt:  # the image sets embedded in full are cached; the report comes at the end
        kept = f"image sets embedded so far are cached in {cache.root}; a re-run reuses them" if cache.root else ""
        interrupted(f"no report written to {out_dir}; " + (kept or "nothing cached (--no-cache)"))
    seconds = time.perf_counter() - started
    settings = {
        "command": "lookalike " + shlex.join(sys.argv[1:]),
        "datasets": None if queries is not None else str(ds.resolve_datasets_root(datasets)),
        "tasks": [t.name for t in tasks] + colour_names,
        "models": model_names,
        "k": k,
        "max_queries": max_queries,
        "seed": seed,
        "query_flip": query_flip,
        "seconds": round(seconds, 1),
    }
    n_examples = examples if charts else 0
    written = write_report(results, out_dir, settings, examples=n_examples, seed=seed, charts=charts) if tasks else {}
    if colour_results:
        written.update(write_colour_report(colour_results, out_dir, settings, n_examples, seed, charts))

    for name in dict.fromkeys(r.task.name for r in results):
        rows = [r for r in results if r.task.name == name]
        first = rows[0]
        title = f"{name}: {len(first.task.queries):,} queries, gallery of {len(first.task.gallery):,}"
        table = Table(title=title, title_justify="left")
        table.add_column("model", no_wrap=True)
        for metric in first.headline():
            table.add_column(metric, justify="right")
        table.add_column("embedded now", justify="right")
        for r in rows:
            secs = r.timings.get("gallery_embed", 0.0) + r.timings.get("queries_embed", 0.0)
            n = sum(r.computed.values())
            done = f"{n:,} in {secs:.0f} s" if n else "cached"
            table.add_row(r.model, *(f"{v:.3f}" for v in r.headline().values()), done)
        out.print(table, soft_wrap=False)
    _print_colour_tables([r for r, _ in colour_results])
    out.print(f"wrote {len(written)} files to {out_dir} in {seconds:.0f} s", highlight=False)


def _print_colour_tables(results: list) -> None:  # type: ignore[type-arg]
    for name in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == name]
        title = f"{name}: {rows[0].scores.queries:,} queries ({rows[0].scores.colour_queries:,} with one colour)"
        table = Table(title=title, title_justify="left")
        for col in ("model", "type+colour mP@10", "fine type mP@10", "colour share", "best", "without colour stage"):
            table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
        for r in rows:
            s, w = r.scores, r.without_colour
            table.add_row(
                r.model,
                f"{s.type_colour:.3f}",
                f"{s.fine_type:.3f}",
                f"{s.colour_share:.3f}",
                f"{s.best:.3f}",
                f"{w.type_colour:.3f} / {w.fine_type:.3f}",
            )
        out.print(table, soft_wrap=False)


def _eval_text(datasets: Path | None, cache_dir: Path, out_dir: Path, seed: int, k: int, quiet: bool) -> None:
    """``lookalike eval --task text``: task 4 on the test split with and without text, and BM25 alone; then the
    held-out photos plus a colour word (:func:`~lookalike.evaluate.text_eval.photo_words_eval`)."""
    import json

    from lookalike.evaluate.text_eval import photo_words_eval, run_text_eval

    say = None if quiet else (lambda msg: err.print(f"[dim]{msg}[/]"))
    results = run_text_eval(datasets, cache_dir, seed=seed, k=k, progress=say)
    if say is not None:
        say("photo plus a colour word")
    photo_words = photo_words_eval(datasets, cache_dir, k=k)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "text.json").write_text(json.dumps({**results, "photo plus a colour word": photo_words}, indent=2))
    metrics = list(next(iter(results.values())))
    table = Table(title="Words → catalogue (task 4), test split", title_justify="left")
    for col in ("catalogue", *metrics):
        table.add_column(col, justify="left" if col == "catalogue" else "right")
    for name, row in results.items():
        table.add_row(name, *(f"{row[m]:.3f}" for m in metrics))
    out.print(table)
    shares = Table(
        title=f"Photo + a colour word (task 3 photos, {photo_words['queries']:.0f} held-out): top-{k} share of "
        "the photo's kind in the asked colour",
        title_justify="left",
    )
    shares.add_column("query")
    shares.add_column("share", justify="right")
    for name, value in photo_words.items():
        if name != "queries":
            shares.add_row(name, f"{value:.3f}")
    out.print(shares)
    out.print(f"wrote {out_dir / 'text.json'}")


# --- train --------------------------------------------------------------------------------------
def train(
    datasets: DatasetsOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder: ONNX, sidecar, summary.json.")] = Path(
        ".lookalike/train-run"
    ),
    cache_dir: Annotated[
        Path | None, typer.Option(help="Backbone-map cache (default: <out>/cache); reused by later runs.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the cached training views.")] = 6,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps (overrides --epochs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of splits, views and initialisation.")] = 0,
    max_images: Annotated[int | None, typer.Option(help="Tiny runs: at most N products (and N/2 photos).")] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per optimiser step.")] = 256,
    composite_views: Annotated[
        int, typer.Option(help="Composited views per training product (0: none; they did not help).")
    ] = 0,
    photo_views: Annotated[int, typer.Option(help="Augmented views per training photo.")] = 3,
    photo_weight: Annotated[float, typer.Option(help="Loss weight of a shopper's photo (a product weighs 1).")] = 2.0,
    photo_balance: Annotated[
        float, typer.Option(help="Photos of rare labels weigh more: (mean count / label count) ** this (0: off).")
    ] = 0.0,
    torch_threads: Annotated[
        int, typer.Option(help="torch threads for training (1 suits the head alone; use the cores with --finetune).")
    ] = 1,
    small_products: Annotated[
        int, typer.Option(help="Extra training products from the 60 x 80 full catalogue (-1: all allowed, 0: none).")
    ] = 0,
    finetune: Annotated[
        bool, typer.Option(help="Also fine-tune the last two blocks and conv_head (else only the new head).")
    ] = False,
    dim: Annotated[int, typer.Option(help="Embedding dimension.")] = 256,
    evaluate: Annotated[bool, typer.Option(help="Score the dev protocol before and after training.")] = True,
    install: Annotated[
        bool,
        typer.Option(
            help="Copy the ONNX to the user model folder as lookalike-fashion.onnx (FP32: it replaces the packaged "
            "INT8 default for new catalogues; `models quantize lookalike-fashion` makes its INT8 variant)."
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train the lookalike-fashion embedding (metric learning on EfficientNet-Lite0), evaluate, export ONNX."""
    import shutil

    from rich.progress import TaskID

    from lookalike.evaluate.datasets import resolve_datasets_root

    try:
        from lookalike.training.model import HeadCfg
        from lookalike.training.train import TrainConfig, run_training
    except ImportError as exc:
        raise LookalikeError(f"training needs torch: pip install 'lookalike[torch]' ({exc})") from exc
    cfg = TrainConfig(
        datasets=resolve_datasets_root(datasets),
        out=out_dir,
        cache_dir=cache_dir or out_dir / "cache",
        seed=seed,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        composite_views=composite_views,
        photo_views=photo_views,
        small_products=small_products,
        photo_weight=photo_weight,
        photo_balance=photo_balance,
        torch_threads=torch_threads,
        max_images=max_images,
        head=HeadCfg(finetune=finetune, dim=dim),
        evaluate=evaluate,
    )
    # On a terminal, bars for the caching and the training (the milestones print above them); otherwise
    # (or --quiet) the plain lines of the library, a few per step.
    show = progress_shown(quiet)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
    )
    bars: dict[str, TaskID] = {}

    def on_progress(label: str, done: int, total: int, info: str) -> None:
        if label not in bars:
            bars[label] = progress.add_task(label, total=total, info=info)
        progress.update(bars[label], completed=done, info=info)

    try:
        with progress, quiet_onnx_tools():
            summary = run_training(
                cfg,
                log=lambda line: err.print(line, highlight=False, markup=False),
                progress=on_progress if show else None,
            )
    except KeyboardInterrupt:
        interrupted(
            f"no model exported to {out_dir}; the backbone maps computed so far stay in {cfg.cache_dir}; "
            "run the same command again to reuse them"
        )
    onnx_path = Path(summary["export"]["path"])
    if install:
        from lookalike.config import user_model_dir

        target = user_model_dir() / "lookalike-fashion.onnx"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, target)
        out.print(f"installed {target}", highlight=False)
    out.print(f"trained model: {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB)", highlight=False)
