"""The catalogue commands: ``ingest``, ``search``, ``info`` and ``delete``."""

from __future__ import annotations

import json
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
    QuietOpt,
    TokenOpt,
    UriOpt,
    err,
    interrupted,
    open_catalog,
    out,
    progress_shown,
)
from lookalike.errors import LookalikeError, SourceError

__all__ = ["delete", "info", "ingest", "search"]


def _filters(
    category: str | None,
    subcategory: str | None,
    article_type: str | None,
    gender: str | None,
    colour: str | None,
    brand: str | None,
    min_price: float | None,
    max_price: float | None,
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
    records = list(read_csv(csv, columns) if csv is not None else read_folder(images))  # type: ignore[arg-type]
    if limit is not None:
        records = records[:limit]
    fetch = FetchSettings(allow_private=allow_private_urls)
    chosen = {"extractor": model} if model else {}  # none: an existing catalogue's, or the default model
    cat = open_catalog(catalog, backend, uri, token, create=True, fetch_settings=fetch, **chosen)
    with cat:
        before = len(cat)
        seen: list[IngestReport] = []  # the ingest's running report, once a batch is committed
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

                report = cat.ingest(records, batch_size=batch_size, refresh=refresh, progress=on_batch)
        except KeyboardInterrupt:  # the library re-raises once the batch in flight is committed
            done = seen[0].added + seen[0].updated + seen[0].unchanged if seen else max(0, len(cat) - before)
            interrupted(f"{done:,} of {len(records):,} products committed; run the same command again to resume")
        for pid, source, message in report.failed:
            err.print(f"[yellow]skipped[/] {escape(pid)} ({escape(str(source))}): {escape(message)}", highlight=False)
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
        Path | None, typer.Option("--batch", help="A file with one image path (with --text: one phrase) per line.")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", help="Words: alone ('navy blue shirt'), or with QUERY/--product ('in red')."),
    ] = None,
    phrases: Annotated[
        bool, typer.Option("--phrases", "--texts", help="With --batch: the file's lines are phrases (words queries).")
    ] = False,
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per query.")] = False,
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
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Find the products that look like an image, a URL or a catalogue product."""
    from lookalike.errors import InvalidQueryError
    from lookalike.imaging import FetchSettings

    given = sum(x is not None for x in (query, product, batch))
    if given > 1 or (given == 0 and text is None):
        raise InvalidQueryError("give exactly one of QUERY, --product ID or --batch FILE, or --text WORDS")
    if batch is not None and text is not None:
        raise InvalidQueryError("with --batch, --phrases says the file's lines are phrases (--text is for one query)")
    if phrases and batch is None:
        raise InvalidQueryError("--phrases goes with --batch FILE")
    words = text
    filters = _filters(category, subcategory, article_type, gender, colour_is, brand, min_price, max_price)
    settings = FetchSettings(allow_private=allow_private_urls)
    cat = open_catalog(
        catalog, backend, uri, token, fetch_settings=settings, query_flip=query_flip, colour_rank=colour_rank,
        collapse_duplicates=collapse,
    )  # fmt: skip
    with cat:
        if batch is not None:
            _search_batch(cat, batch, k, filters, as_json, colour, phrases)
            return
        if product is not None:
            result = cat.search_result(product_id=product, k=k, filters=filters, colour=colour, text=words)
            label = f"product {product}"
        elif query is not None and query.lower().startswith(("http://", "https://")):
            result = cat.search_result(url=query, k=k, filters=filters, colour=colour, text=words)
            label = query
        elif query is not None:
            result = cat.search_result(Path(str(query)), k=k, filters=filters, colour=colour, text=words)
            label = str(query)
        else:
            result = cat.search_result(k=k, filters=filters, colour=colour, text=words)
            label = repr(words)
        if words is not None and (query is not None or product is not None):
            label += f" + {words!r}"
        if as_json:
            print(json.dumps({"query": label, **_json_result(result)}))
            return
        _print_hits(label, result.hits, result)


def _json_result(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    colour = {"ranked_by": result.colour, "source": result.colour_source}
    if result.detected is not None:
        colour["detected"] = result.detected.family
    hits = [{"id": h.id, "score": round(h.score, 6), **({"duplicates": h.duplicates} if h.duplicates else {})}
            for h in result.hits]  # fmt: skip
    return {"colour": colour, "hits": hits}


def _search_batch(cat, batch: Path, k: int, filters, as_json: bool, colour: str | None, phrases: bool = False) -> None:  # type: ignore[no-untyped-def]
    try:
        lines = [ln.strip() for ln in batch.read_text().splitlines()]
    except OSError as exc:
        raise SourceError(f"cannot read {batch}: {exc.strerror or exc}") from exc
    queries = [ln for ln in lines if ln and not ln.startswith("#")]
    if phrases:
        results = cat.search_texts(queries, k=k, filters=filters, colour=colour)
    else:
        results = cat.search_many_results(queries, k=k, filters=filters, colour=colour)
    failures = 0
    for q, res in zip(queries, results, strict=True):
        if isinstance(res, LookalikeError):
            failures += 1
            if as_json:
                print(json.dumps({"query": q, "error": str(res)}))
            else:
                err.print(f"[red]error[/] {escape(q)}: {escape(str(res))}", highlight=False)
            continue
        if as_json:
            print(json.dumps({"query": q, **_json_result(res)}))
        else:
            _print_hits(q, res.hits, res)
    if failures and not as_json:
        err.print(f"{failures} of {len(queries)} queries failed")


def _print_hits(label: str, hits, result=None) -> None:  # type: ignore[no-untyped-def]
    title = f"Most like {label}"
    if result is not None and result.detected is not None:
        title += f" · colour seen: {result.detected.family}"
    if result is not None and result.colour_source == "preference":
        title += f" · ranked for: {result.colour}"
    table = Table(title=title, title_justify="left")
    for col, just in (("#", "right"), ("score", "right"), ("id", "left"), ("title", "left"),
                      ("type", "left"), ("colour", "left"), ("gender", "left"), ("price", "right")):  # fmt: skip
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for rank, h in enumerate(hits, start=1):
        p = h.product
        cells = (h.id, p.title or "", p.article_type or "", p.colour or "", p.gender or "")
        table.add_row(
            str(rank), f"{h.score:.3f}", *(escape(c) for c in cells), "" if p.price is None else f"{p.price:.2f}",
        )  # fmt: skip
    out.print(table, soft_wrap=False)
    for rank, h in enumerate(hits, start=1):
        if h.duplicates:
            same = f"#{rank} {h.id}: {len(h.duplicates)} more with this picture ({', '.join(h.duplicates)})"
            out.print(same, highlight=False, markup=False)
    if not hits:
        out.print("no products match")


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
    from lookalike.catalog.duplicates import duplicate_groups

    with open_catalog(catalog, backend, uri, token) as cat:
        data = cat.info()
        data["consistent"] = cat.verify()["ok"]
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
