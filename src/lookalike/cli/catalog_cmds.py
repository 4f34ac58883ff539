"""The catalogue commands: ``ingest``, ``search``, ``info`` and ``delete``."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lookalike.cli.options import (
    AllowPrivateOpt,
    BackendOpt,
    CatalogArg,
    LikeOpt,
    QuietOpt,
    TokenOpt,
    UnlikeOpt,
    UriOpt,
    err,
    interrupted,
    open_catalog,
    out,
    progress_shown,
)
from lookalike.cli.ray_opts import RayActorsOpt, RayAddressOpt, RayCpusOpt, RayOpt, ingest_runner
from lookalike.cli.search_output import json_result, nothing_found, print_hits
from lookalike.errors import LookalikeError, SourceError, StorageFullError

__all__ = ["delete", "info", "ingest", "search"]

#: Without a progress bar (output not a terminal: a log, a CI run), ``ingest`` logs a line every this many
#: products, or every 10 s.
LOG_EVERY = 1000


def _filters(
    category: str | None,
    subcategory: str | None,
    article_type: str | None,
    gender: str | None,
    colour: str | None,
    brand: str | None,
    min_price: float | None,
    max_price: float | None,
    in_stock: bool = False,
):  # type: ignore[no-untyped-def]
    from lookalike.product import Filters

    return Filters.from_kwargs(
        category=category,
        subcategory=subcategory,
        article_type=article_type,
        gender=gender,
        colour=colour,
        brand=brand,
        min_price=min_price,
        max_price=max_price,
        in_stock=True if in_stock else None,  # the flag: leave out what is known to be out of stock
    )


# --- ingest ---------------------------------------------------------------------------------------
def ingest(
    catalog: CatalogArg,
    images: Annotated[Path | None, typer.Option("--images", help="A folder of product images.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="A CSV of products (image paths or URLs).")] = None,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. --map title=name (repeatable).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Extractor for a new catalogue.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch (one transaction each).")] = 64,
    limit: Annotated[int | None, typer.Option(help="Ingest only the first N rows.")] = None,
    refresh: Annotated[bool, typer.Option(help="Re-embed even unchanged pictures.")] = False,
    allow_private_urls: AllowPrivateOpt = False,
    quiet: QuietOpt = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_actors: RayActorsOpt = None,
    ray_cpus: RayCpusOpt = 1.0,
) -> None:
    """Add or update products from a folder or a CSV. Resumable: re-run to finish an interrupted ingest."""
    from lookalike.catalog import IngestProgress, IngestReport
    from lookalike.imaging import FetchSettings
    from lookalike.sources import read_csv, read_folder

    if (images is None) == (csv is None):
        raise SourceError("give exactly one of --images DIR or --csv FILE")
    columns: dict[str, str] = {}
    for item in mapping or []:
        fld, sep, col = item.partition("=")
        if not sep or not fld or not col:
            raise SourceError(f"--map takes FIELD=COLUMN, got {item!r}")
        columns[fld.strip()] = col.strip()
    try:
        records = list(read_csv(csv, columns) if csv is not None else read_folder(images))  # type: ignore[arg-type]
    except SourceError as exc:
        if csv is not None or not str(exc).startswith("no image files"):
            raise
        out.print(f"nothing to add: {exc}", highlight=False, markup=False)  # an empty folder is not a failure
        return
    if limit is not None:
        records = records[:limit]
    if not records:
        out.print(f"nothing to add: {csv or images} has no products", highlight=False, markup=False)
        return
    fetch = FetchSettings(allow_private=allow_private_urls)
    chosen = {"extractor": model} if model else {}  # none: an existing catalogue's, or the default model
    cat = open_catalog(catalog, backend, uri, token, create=True, fetch_settings=fetch, **chosen)
    with cat:
        before = len(cat)
        seen: list[IngestReport] = []  # the ingest's running report, once a batch is committed
        logged = [0, time.monotonic()]  # products and time of the last progress line (no bar: a log, a CI run)
        progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} img/s"),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            console=err,
            disable=not progress_shown(quiet),
        )
        try:
            with progress:
                task = progress.add_task("ingest", total=len(records), rate=0.0, failed=0)

                def on_batch(p: IngestProgress) -> None:
                    seen[:] = [p.report]
                    r = p.report
                    elapsed = max(1e-9, progress.tasks[task].elapsed or 1e-9)
                    progress.update(task, completed=p.done, rate=r.embedded / elapsed, failed=len(r.failed))
                    now = time.monotonic()
                    if progress.disable and not quiet and (p.done - logged[0] >= LOG_EVERY or now - logged[1] >= 10):
                        logged[:] = [p.done, now]
                        line = f"ingest: {p.done:,} of {len(records):,} products, {len(r.failed):,} failed, "
                        err.print(line + f"{r.embedded / elapsed:.1f} img/s", highlight=False, markup=False)

                run = ingest_runner(cat, ray, ray_address, ray_actors, ray_cpus)  # cat.ingest, or on a Ray cluster
                report = run(records, batch_size=batch_size, refresh=refresh, progress=on_batch)
        except KeyboardInterrupt:  # the library re-raises once the batch in flight is committed
            done = seen[0].added + seen[0].updated + seen[0].unchanged if seen else max(0, len(cat) - before)
            interrupted(f"{done:,} of {len(records):,} products committed; run the same command again to resume")
        except StorageFullError as exc:  # not a bad picture: the ingest stops (exit 74) and a re-run resumes
            done = seen[0].added + seen[0].updated + seen[0].unchanged if seen else max(0, len(cat) - before)
            raise StorageFullError(
                f"{exc}; {done:,} of {len(records):,} products committed: free space and run the same command again"
            ) from exc
        for pid, source, message in report.failed:
            err.print(f"[yellow]skipped[/] {escape(pid)} ({escape(str(source))}): {escape(message)}", highlight=False)
        for pid, source, message in report.partial:  # added with its other pictures
            err.print(f"[yellow]picture left out[/] {escape(pid)} ({escape(str(source))}): {escape(message)}")
        out.print(
            f"{cat.path}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {report.embedded} images in {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} img/s); {len(cat)} products",
            highlight=False,
            soft_wrap=True,
        )


# --- search ---------------------------------------------------------------------------------------
def search(
    catalog: CatalogArg,
    query: Annotated[str | None, typer.Argument(help="An image path or http(s) URL.")] = None,
    product: Annotated[str | None, typer.Option("--product", "-p", help="More like this product id.")] = None,
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="A file with one query per line: image paths or URLs (with --phrases: phrases)."),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", help="Words: alone ('navy blue shirt'), or with QUERY/--product ('in red')."),
    ] = None,
    phrases: Annotated[
        bool, typer.Option("--phrases", "--texts", help="With --batch: the file's lines are phrases (words queries).")
    ] = False,
    k: Annotated[int, typer.Option("--top", "-k", "--k", help="How many results.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per query; each hit with its scores and product fields.")
    ] = False,
    compact: Annotated[bool, typer.Option("--compact", help="With --json: each hit as its id and score only.")] = False,
    category: Annotated[str | None, typer.Option(help="Filter: category.")] = None,
    subcategory: Annotated[str | None, typer.Option(help="Filter: subcategory.")] = None,
    article_type: Annotated[str | None, typer.Option("--article-type", help="Filter: article type.")] = None,
    gender: Annotated[str | None, typer.Option(help="Filter: gender.")] = None,
    colour_is: Annotated[
        str | None, typer.Option("--colour-is", "--color-is", help="Filter: exactly this colour field value.")
    ] = None,
    brand: Annotated[str | None, typer.Option(help="Filter: brand.")] = None,
    min_price: Annotated[float | None, typer.Option(help="Filter: lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Filter: highest price.")] = None,
    in_stock: Annotated[
        bool, typer.Option("--in-stock", help="Filter: leave out the products known to be out of stock.")
    ] = False,
    allow_private_urls: AllowPrivateOpt = False,
    query_flip: Annotated[
        bool, typer.Option(help="Also search the picture's mirror image (each product scores its better view).")
    ] = True,
    colour: Annotated[
        str | None,
        typer.Option(
            "--colour", "--color", help="Colour preference: rank this colour first ('this, but in red'); not a filter."
        ),
    ] = None,
    colour_rank: Annotated[
        bool, typer.Option(help="Re-rank by agreement with the query's colour (detected, or the product's own).")
    ] = True,
    collapse: Annotated[
        bool, typer.Option(help="Show products with the very same picture once (the others listed under it).")
    ] = True,
    kind_rank: Annotated[
        bool, typer.Option(help="Rank up the kind the picture looks like (off: the nearest products' vote).")
    ] = True,
    like: LikeOpt = None,
    unlike: UnlikeOpt = None,
    region: Annotated[str | None, typer.Option(help="Only this part of the picture: x0,y0,x1,y1 (fractions).")] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Rank by this kind (article type) instead of the one the picture looks like."),
    ] = None,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Find the products that look like an image, a URL or a catalogue product."""
    from lookalike.errors import InvalidQueryError
    from lookalike.imaging import FetchSettings

    given = sum(x is not None for x in (query, product, batch))
    if given > 1 or (given == 0 and text is None and not like):
        raise InvalidQueryError("give exactly one of QUERY, --product ID or --batch FILE, or --text WORDS")
    if batch is not None and text is not None:
        raise InvalidQueryError("with --batch, --phrases says the file's lines are phrases (--text is for one query)")
    if phrases and batch is None:
        raise InvalidQueryError("--phrases goes with --batch FILE")
    if batch is not None and (like or unlike or region):
        raise InvalidQueryError("--like, --unlike and --region go with one query, not --batch")
    words = text
    filters = _filters(category, subcategory, article_type, gender, colour_is, brand, min_price, max_price, in_stock)
    settings = FetchSettings(allow_private=allow_private_urls)
    cat = open_catalog(
        catalog, backend, uri, token, fetch_settings=settings, query_flip=query_flip, colour_rank=colour_rank,
        collapse_duplicates=collapse,
    )  # fmt: skip
    cat.kind_rank = kind_rank
    with cat:
        if batch is not None:
            _search_batch(cat, batch, k, filters, as_json, colour, phrases, compact, kind)
            return
        if product is not None:
            where, label = {"product_id": product}, f"product {product}"
        elif query is not None and query.lower().startswith(("http://", "https://")):
            where, label = {"url": query}, query
        elif query is not None:
            where, label = {"image": Path(str(query))}, str(query)
        else:
            where, label = {}, repr(words) if words is not None else "liked " + ", ".join(like or [])
        fb = {"positive": like, "negative": unlike, "region": region, "kind": kind}  # liked, disliked ids; region
        result = cat.search_result(**where, k=k, filters=filters, colour=colour, text=words, **fb)  # type: ignore[arg-type]
        if words is not None and (query is not None or product is not None):
            label += f" + {words!r}"
        if as_json:
            print(json.dumps({"query": label, **json_result(result, compact)}))
            if not result.hits:
                err.print(nothing_found(cat, filters), highlight=False, markup=False)
            return
        print_hits(label, result.hits, result, nothing_found(cat, filters))


def _search_batch(  # type: ignore[no-untyped-def]
    cat,
    batch: Path,
    k: int,
    filters,
    as_json: bool,
    colour: str | None,
    phrases: bool = False,
    compact: bool = False,
    kind: str | None = None,
) -> None:
    try:
        lines = [ln.strip() for ln in batch.read_text().splitlines()]
    except OSError as exc:
        raise SourceError(f"cannot read {batch}: {exc.strerror or exc}") from exc
    queries = [ln for ln in lines if ln and not ln.startswith("#")]
    if phrases:
        results = cat.search_texts(queries, k=k, filters=filters, colour=colour)
    else:
        results = cat.search_many_results(queries, k=k, filters=filters, colour=colour, kind=kind)
    failures = 0
    nothing = nothing_found(cat, filters)
    for q, res in zip(queries, results, strict=True):
        if isinstance(res, LookalikeError):
            failures += 1
            if as_json:
                print(json.dumps({"query": q, "error": str(res)}))
            else:
                err.print(f"[red]error[/] {escape(q)}: {escape(str(res))}", highlight=False)
            continue
        if as_json:
            print(json.dumps({"query": q, **json_result(res, compact)}))
        else:
            print_hits(q, res.hits, res, nothing)
    if as_json and len(cat) == 0:
        err.print(nothing, highlight=False, markup=False)
    if failures and not as_json:
        err.print(f"{failures} of {len(queries)} queries failed")


# --- info / delete --------------------------------------------------------------------------------
def info(
    catalog: CatalogArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="List the images that failed to ingest.")] = False,
    duplicates: Annotated[
        bool, typer.Option("--duplicates", help="List the groups of products that share one picture.")
    ] = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Describe a catalogue: products, extractor, size on disk, failed images, products sharing a picture."""
    from lookalike.catalog.check import check_catalog
    from lookalike.catalog.duplicates import duplicate_groups

    with open_catalog(catalog, backend, uri, token) as cat:
        problems = check_catalog(cat)  # store pages, index against store, every product's picture files
        try:
            data = cat.info()
        except sqlite3.DatabaseError as exc:  # a damaged store: what is wrong is the news
            data = {"path": str(cat.path)}
            problems.append(f"product store: {exc} (while describing the catalogue)")
        data["consistent"] = not problems
        if problems:
            data["problems"] = problems
        failed = cat.store.errors()
        groups = duplicate_groups(cat.backend) if duplicates else []
    if duplicates:
        data["duplicate_groups"] = len(groups)
        data["duplicate_products"] = sum(len(g) for g in groups)
    if as_json:
        if errors:
            data["errors"] = failed
        if duplicates:
            data["duplicates"] = groups
        print(json.dumps(data, indent=2))
        return
    table = Table(show_header=False)
    for key, value in data.items():
        if key == "bytes_on_disk":
            value = f"{value / 1e6:.1f} MB"
        elif key == "problems":
            value = "\n".join(value)
        table.add_row(key, escape(str(value)))
    out.print(table, soft_wrap=False)
    if errors:
        for row in failed:
            out.print(f"{row['id']} ({row['image']}): {row['error']}", highlight=False, markup=False)
    if duplicates:
        for group in groups:
            out.print(f"same picture: {' '.join(group)}", highlight=False, markup=False)


def delete(
    catalog: CatalogArg,
    ids: Annotated[list[str] | None, typer.Argument(help="Product ids to delete.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file with one product id per line.")] = None,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete products by id."""
    from lookalike.errors import InvalidQueryError

    wanted = list(ids or [])
    if file is not None:
        try:
            wanted += [ln.strip() for ln in file.read_text().splitlines() if ln.strip()]
        except OSError as exc:
            raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if not wanted:
        raise InvalidQueryError("give product ids to delete, or --file FILE")
    with open_catalog(catalog, backend, uri, token) as cat:
        n = cat.delete(wanted)
        out.print(f"deleted {n} of {len(wanted)} products; {len(cat)} left")
