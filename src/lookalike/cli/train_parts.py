"""``lookalike train-segmenter`` (the garment segmenter), ``lookalike train-colour`` (the colour head) and
``lookalike train-kind`` (the kind head): the smaller models of colour- and kind-true search, each trained alone."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from lookalike.cli.options import DatasetsOpt, QuietOpt, err, interrupted, out, quiet_onnx_tools

__all__ = ["run_training", "train_colour", "train_kind", "train_segmenter"]


def train_segmenter(
    datasets: DatasetsOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder: lookalike-garment.onnx and .json.")] = Path(
        ".lookalike/segmenter-run"
    ),
    cache_dir: Annotated[Path | None, typer.Option(help="Catalogue-mask cache (default: <out>/cache).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the composite pool.")] = 6,
    views: Annotated[int, typer.Option(help="Composites per training product in the pool.")] = 1,
    size: Annotated[int, typer.Option(help="Input size of the model (pixels, square).")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of composites and initialisation.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Tiny runs: at most N catalogue products.")] = None,
    torch_threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Train the garment segmenter on catalogue shots composited onto home scenes; report mask IoU on held-out
    composites (test-split products), export ONNX."""
    from lookalike.training.segment import train_segmenter as run

    run_training(
        run, datasets, out_dir, cache_dir, quiet,
        size=size, epochs=epochs, views=views, seed=seed, threads=torch_threads, limit=limit,
    )  # fmt: skip


def run_training(
    run: Callable[..., Any], datasets: Path | None, out_dir: Path, cache_dir: Path | None, quiet: bool, **options: Any
) -> None:
    """Train a model that learns from catalogue masks: ``run(datasets root, out_dir, **options, progress=...,
    cache_dir=..., command=...)`` (the cache defaults to ``<out_dir>/cache``), then print its report."""
    from lookalike.evaluate.datasets import resolve_datasets_root

    def say(message: str) -> None:
        if not quiet:
            err.print(message, highlight=False, markup=False)

    try:
        with quiet_onnx_tools():
            report = run(
                resolve_datasets_root(datasets),
                out_dir,
                **options,
                progress=say,
                cache_dir=cache_dir or out_dir / "cache",
                command="lookalike " + shlex.join(sys.argv[1:]),
            )
    except KeyboardInterrupt:
        interrupted(f"no model exported to {out_dir}; catalogue masks computed so far stay in the cache")
    out.print(json.dumps(report, indent=2, default=str), highlight=False, soft_wrap=True)


def train_colour(
    datasets: DatasetsOpt = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The colour head (JSON).")] = Path(
        ".lookalike/colour-run/lookalike-colour.json"
    ),
    cache_dir: Annotated[Path | None, typer.Option(help="Catalogue-mask cache, shared with train-segmenter.")] = None,
    composites: Annotated[
        int, typer.Option(help="Phone-scene composites per catalogue product (0: none; 1 measured no better).")
    ] = 0,
    photo_weight: Annotated[float, typer.Option(help="Loss weight of a labelled shopper's photo.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of the contributor split and the composites.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Tiny runs: at most N products and N photos.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the colour head (garment pixels → 12 colour families) on catalogue shots, their composites and the
    labelled photos of training contributors; the segmenter finds the garment in photos and composites."""
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.garment import default_segmenter
    from lookalike.training.colour import train_colour_head

    def say(part: str, done: int, total: int) -> None:
        if not quiet and (done == total or done % 1000 == 0):
            err.print(f"[{part}] {done:,} of {total:,}", highlight=False, markup=False)

    try:
        summary = train_colour_head(
            resolve_datasets_root(datasets),
            out_file,
            photo_mask=default_segmenter().predict,
            photo_weight=photo_weight,
            composites=composites,
            seed=seed,
            limit=limit,
            cache_dir=cache_dir or out_file.parent / "cache",
            progress=say,
            command="lookalike " + shlex.join(sys.argv[1:]),
        )
    except KeyboardInterrupt:
        interrupted(f"no colour head written to {out_file}")
    out.print(json.dumps(summary, indent=2), highlight=False, soft_wrap=True)
    out.print(f"wrote {out_file}", highlight=False)


def train_kind(
    datasets: DatasetsOpt = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The kind head (JSON).")] = Path(
        ".lookalike/kind-run/lookalike-kind.json"
    ),
    model: Annotated[str, typer.Option("--model", "-m", help="The embedding model the head reads.")] = (
        "lookalike-fashion"
    ),
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache (default: the eval's).")] = None,
    per_class: Annotated[int, typer.Option(help="Small-catalogue products per article type (0: none).")] = 400,
    balance: Annotated[float, typer.Option(help="Example weight = (its class's count) ** -balance.")] = 0.5,
    epochs: Annotated[int, typer.Option(help="Full-batch Adam steps.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the small-catalogue sample.")] = 0,
    branch: Annotated[
        bool,
        typer.Option(
            "--branch/--no-branch",
            help="Also fine-tune the kind branch on lookalike-fashion's own maps (torch; ~12 min on 2 cores) and "
            "write it beside the head (OUT with .onnx).",
        ),
    ] = False,
    branch_steps: Annotated[int, typer.Option(help="Training steps of the branch (batch 128).")] = 800,
    quiet: QuietOpt = False,
) -> None:
    """Train the kind head (a picture's embedding → its kind of product) on catalogue shots and the training
    contributors' photos, classes balanced; report top-1 on the held-out contributors' photos. With --branch, the
    kind branch too (the shipped pair: `lookalike train-kind --branch -o src/lookalike/models/lookalike-kind.json`)."""
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.training.kind import KindTrainCfg, train_kind_head

    def say(part: str, done: int, total: int) -> None:
        if not quiet and (done == total or done % 2000 == 0):
            err.print(f"[{part}] {done:,} of {total:,}", highlight=False, markup=False)

    cfg = KindTrainCfg(epochs=epochs, balance=balance, per_class=per_class, seed=seed)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_onnx_tools():
            summary = train_kind_head(resolve_datasets_root(datasets), out_file, model, cfg, cache_dir, say)
            if branch:
                from lookalike.training.kind_branch import BranchCfg, train_kind_branch

                bcfg = BranchCfg(steps=branch_steps, seed=seed)
                summary["branch"] = train_kind_branch(resolve_datasets_root(datasets), out_file, bcfg, say)
    except KeyboardInterrupt:
        interrupted(f"no kind head written to {out_file}")
    out.print(json.dumps(summary, indent=2), highlight=False, soft_wrap=True)
    out.print(f"wrote {out_file}", highlight=False)
