"""The ``lookalike`` command: a thin Typer shell over the library, one module per command group.

:mod:`~lookalike.cli.options` holds what the commands share (consoles, option types, the exit-code
boundary); :mod:`~lookalike.cli.catalog_cmds`, :mod:`~lookalike.cli.models_cmds`,
:mod:`~lookalike.cli.check_cmds`, :mod:`~lookalike.cli.ops_cmds`, :mod:`~lookalike.cli.eval_train`,
:mod:`~lookalike.cli.train_parts` and :mod:`~lookalike.cli.serve_migrate` hold the commands. They are
registered here, in the order ``lookalike --help`` lists them.
"""

from __future__ import annotations

import typer

from lookalike.cli import (
    catalog_cmds,
    check_cmds,
    eval_train,
    look_cmds,
    models_cmds,
    ops_cmds,
    serve_migrate,
    train_parts,
)
from lookalike.cli.help import Group
from lookalike.cli.options import run_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="lookalike",
    cls=Group,
    help="Visual search for fashion catalogues: find the products that look like a photo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(cls=Group, help="List, export and register feature extractors.", no_args_is_help=False)
app.add_typer(models_app, name="models")

models_app.callback(invoke_without_command=True)(models_cmds.models)
models_app.command("export")(models_cmds.models_export)
models_app.command("add")(models_cmds.models_add)
models_app.command("remove")(models_cmds.models_remove)
models_app.command("quantize")(models_cmds.models_quantize)

app.command()(catalog_cmds.ingest)
app.command()(catalog_cmds.search)
app.command()(look_cmds.look)
app.command()(catalog_cmds.info)
app.command()(catalog_cmds.delete)
app.command()(check_cmds.check)
app.command()(ops_cmds.reindex)
app.command()(ops_cmds.gc)
app.command()(ops_cmds.backup)
app.command()(serve_migrate.migrate)
app.command("eval")(eval_train.eval_)
app.command()(eval_train.train)
app.command("train-segmenter")(train_parts.train_segmenter)
app.command("train-colour")(train_parts.train_colour)
app.command("train-kind")(train_parts.train_kind)
app.command("train-detector")(look_cmds.train_detector)
app.command()(serve_migrate.serve)


def main() -> None:
    """Entry point: run the app, turning lookalike errors into one line and an exit code."""
    run_app(app)
