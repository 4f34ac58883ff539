"""Operating a catalogue: ``reindex`` (a new model without downtime, gated, with rollback), ``gc`` and ``backup``.

The library does the work (:mod:`lookalike.catalog.reindex`, :mod:`lookalike.catalog.backup`); ``check --repair``
lives with ``check`` (:mod:`lookalike.cli.check_cmds`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lookalike.cli.options import (
    BackendOpt,
    CatalogArg,
    QuietOpt,
    TokenOpt,
    UriOpt,
    err,
    interrupted,
    out,
    progress_shown,
    quiet_milvus,
)
from lookalike.errors import CatalogError

__all__ = ["backup", "gc", "reindex"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")]


def _say(line: str) -> None:
    out.print(line, highlight=False, markup=False)


def _milvus(backend: str) -> bool:
    """Whether ``backend`` is Milvus (its logs quietened); an unknown backend is refused."""
    if backend not in ("embedded", "milvus"):
        raise CatalogError(f"unknown backend {backend!r} (use one of embedded, milvus)")
    if backend == "milvus":
        quiet_milvus()
    return backend == "milvus"


def reindex(
    catalog: CatalogArg,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The model of the new generation (a name or an .onnx file).")
    ] = None,
    gate: Annotated[
        Path | None,
        typer.Option(
            "--gate", help="Labelled queries (CSV: image, products, article_types): switch only if not worse."
        ),
    ] = None,
    max_loss: Annotated[
        float, typer.Option("--max-loss", help="With --gate: the most mP@k the new model may lose.")
    ] = 0.01,
    k: Annotated[int, typer.Option("--k", help="With --gate: the k of mP@k.")] = 10,
    switch: Annotated[bool, typer.Option(help="Switch to the new generation when it is ready (and passes).")] = True,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Switch back to the previous generation (no --model).")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Products per batch (one transaction each).")] = 64,
    nice: Annotated[
        int, typer.Option("--nice", help="Lower this command's CPU priority by N (0: not), so a server beside it wins.")
    ] = 10,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Re-embed the catalogue's stored pictures with another model into a new generation while the current one
    serves, then switch (a running `lookalike serve` follows). Resumable: run it again after an interruption.
    Milvus: the catalogue name becomes an alias of the generation's collection (NAME__g<n>)."""
    from lookalike.catalog import milvus_reindex as mx
    from lookalike.catalog import reindex as rx

    milvus = _milvus(backend)
    if rollback:
        if model is not None or gate is not None:
            raise CatalogError("--rollback takes no --model or --gate")
        report = mx.rollback(str(catalog), uri=uri, token=token) if milvus else rx.rollback(catalog)
        if as_json:
            print(json.dumps({"rolled_back_to": report.target, "from": report.source, "final": report.to_dict()}))
        else:
            _say(f"{catalog}: generation {report.target} serves again (generation {report.source} is kept)")
        return
    if model is None:
        raise CatalogError("give --model NAME (the new generation's model) or --rollback")
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)  # the decode workers it forks inherit it
    checker = None
    if gate is not None:
        from lookalike.evaluate.gate import make_gate

        checker = make_gate(gate, max_loss, k)  # a bad gate file fails before any embedding
    bar = Progress(
        TextColumn("[bold]reindex"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not progress_shown(quiet),
    )
    try:
        with bar:
            task = bar.add_task("reindex", total=None)

            def on_batch(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if milvus:
                result = mx.reindex(
                    str(catalog), model, uri=uri, token=token, gate=checker, switch_to=switch, progress=on_batch,
                    batch_size=batch_size,
                )  # fmt: skip
            else:
                result = rx.reindex(catalog, model, checker, switch, on_batch, batch_size)
    except KeyboardInterrupt:
        interrupted("what was embedded is kept; run the same command again to resume")
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        b = result.build
        _say(
            f"{catalog}: generation {result.generation} ({result.model}): {b.embedded} products embedded "
            f"({b.pictures} pictures), {b.updated} updated, {b.deleted} deleted, {b.unchanged} already there, "
            f"{len(b.failed)} failed, in {b.seconds:.1f} s"
        )
        if result.gate is not None:
            _say(f"gate: {result.gate}")
        if result.switched:
            untested = "" if result.gate is not None else " (untested: no --gate)"
            again = f"lookalike reindex {catalog}{' --backend milvus' if milvus else ''} --rollback"
            _say(f"switched: generation {result.generation} serves{untested}; `{again}` returns to generation "
                 f"{result.previous}")  # fmt: skip
        else:
            _say(f"not switched: {result.reason}; generation {result.previous} still serves")
    for pid, why in result.final.failed if result.final is not None else ():  # Milvus: the pass after the swap
        err.print(f"warning: {pid!r}, written during the switch, is not in the new generation: {why}", markup=False)
    if not result.switched and switch:
        raise typer.Exit(1)


def gc(
    catalog: CatalogArg,
    keep_previous: Annotated[
        bool, typer.Option(help="Keep the previous generation (what `reindex --rollback` returns to).")
    ] = True,
    everything: Annotated[
        bool, typer.Option("--all", help="Delete the previous generation too (no rollback afterwards).")
    ] = False,
    as_json: JsonOpt = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete the generations of a catalogue that no longer serve (the pictures are shared and stay); Milvus: drop
    the generations' collections that no alias names."""
    from lookalike.catalog import milvus_reindex as mx
    from lookalike.catalog import reindex as rx

    keep = keep_previous and not everything
    if _milvus(backend):
        removed = mx.gc(str(catalog), uri=uri, token=token, keep_previous=keep)
    else:
        removed = rx.gc(catalog, keep)
    if as_json:
        print(json.dumps({"removed": removed}))
    elif removed:
        _say(f"{catalog}: removed generation(s) {', '.join(map(str, removed))}")
    else:
        _say(f"{catalog}: no generation to remove")


def backup(
    catalog: CatalogArg,
    dest: Annotated[Path, typer.Argument(help="A new folder for the copy.")],
    link: Annotated[
        bool, typer.Option("--link", help="Hard-link the pictures instead of copying them (same filesystem).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy a catalogue consistently while it serves or ingests (SQLite's online backup, the index of the same
    state, the pictures, the model): the copy is a catalogue that opens and searches anywhere."""
    from lookalike.catalog.backup import backup as run

    report = run(catalog, dest, link)
    if as_json:
        print(json.dumps({
            "dest": str(report.dest), "generation": report.generation, "seq": report.seq, "products": report.products,
            "pictures": report.pictures, "bytes": report.bytes, "seconds": round(report.seconds, 3),
            "problems": report.problems,
        }, indent=2))  # fmt: skip
    else:
        _say(
            f"{catalog} → {report.dest}: {report.products} products, {report.pictures} pictures, "
            f"{report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s (generation {report.generation}, seq {report.seq})"
        )
        for line in report.problems:
            err.print(f"warning: the copy carries the catalogue's damage: {line}", highlight=False, markup=False)
    if report.problems:
        raise typer.Exit(1)


# --- check in depth, and repair (the options of `lookalike check`) -------------------------------------------
def deep_check(cat) -> list[str]:  # type: ignore[no-untyped-def]
    """``lookalike check``'s problems for an embedded catalogue (:func:`lookalike.catalog.repair.inspect`)."""
    from lookalike.catalog.repair import inspect

    return [f.message for f in inspect(cat)]


def run_repair(catalog: Path, backend: str, drop_missing: bool) -> None:
    """``lookalike check --repair``: rebuild, and say what was rebuilt and dropped (the check then runs)."""
    from lookalike.catalog.repair import repair

    if backend != "embedded":
        raise CatalogError("--repair works on embedded catalogues (a Milvus collection is repaired by Milvus)")
    report = repair(catalog, drop_missing)
    for line in report.fixed:
        err.print(f"repaired: {line}", highlight=False, markup=False)
    if report.dropped:
        err.print(f"dropped (picture missing or damaged): {', '.join(report.dropped)}", highlight=False, markup=False)
