"""``lookalike check``: is a catalogue sound (store pages, index against store, every product's pictures)?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lookalike.cli.options import BackendOpt, CatalogArg, TokenOpt, UriOpt, err, open_catalog, out

__all__ = ["check"]


def check(
    catalog: CatalogArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: {ok, problems}.")] = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="First rebuild what can be rebuilt (vectors, index, colours, the store).")
    ] = False,
    drop_missing: Annotated[
        bool, typer.Option("--drop-missing", help="With --repair: delete products whose picture is missing or damaged.")
    ] = False,
) -> None:
    """Check a catalogue: SQLite's page check of the product store, the index against the store, and that every
    product's picture file is there (embedded: also every product's vectors, every vector's product, the pictures'
    and the model's SHA-256, predicted colours). Exit 0 when sound, 1 with one line per problem."""
    from lookalike.catalog.check import check_catalog
    from lookalike.cli.ops_cmds import deep_check, run_repair

    if repair:
        run_repair(catalog, backend, drop_missing)
    with open_catalog(catalog, backend, uri, token) as cat:
        problems = deep_check(cat) if backend == "embedded" else check_catalog(cat)
        products = len(cat) if not problems else None
    if as_json:
        print(json.dumps({"ok": not problems, "problems": problems}, indent=2))
    elif problems:
        for line in problems:
            err.print(line, highlight=False, markup=False)
        err.print(f"{catalog}: {len(problems)} problem(s)", highlight=False, markup=False)
    else:
        out.print(f"{catalog}: ok ({products} products)", highlight=False, markup=False)
    if problems:
        raise typer.Exit(1)
