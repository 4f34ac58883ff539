"""``lookalike migrate`` (copy a catalogue to another backend) and ``lookalike serve`` (web page and API)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lookalike.cli.options import (
    BackendOpt,
    CatalogArg,
    QuietOpt,
    TokenOpt,
    UriOpt,
    err,
    out,
    progress_shown,
    quiet_milvus,
)
from lookalike.errors import LookalikeError

__all__ = ["migrate", "serve"]


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
    quiet: QuietOpt = False,
) -> None:
    """Copy a catalogue to another backend: vectors, metadata, pictures (no re-embedding). Re-run to resume."""
    from lookalike.migrate import MigrateProgress, migrate_catalog

    if "milvus" in (src_backend, dst_backend):
        quiet_milvus()
    show = progress_shown(quiet)
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


# --- serve ----------------------------------------------------------------------------------------
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
        quiet_milvus()
        from pydantic import SecretStr

        secret = SecretStr(token) if token else settings.milvus_token
        settings = settings.model_copy(update={"backend": backend, "milvus_uri": uri, "milvus_token": secret})
    err.print(f"serving {catalog} on http://{host}:{port} (API docs at /docs)", highlight=False)
    app = create_app(catalog, settings)
    quiet = _StartupFailure(app)
    logging.getLogger("uvicorn.error").addFilter(quiet)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=75)
    except SystemExit:
        failed = getattr(app.state, "startup_error", None)
        if failed is not None:  # one line and the error's exit code (run_app), not uvicorn's traceback and 3
            raise failed from None
        raise
    finally:
        logging.getLogger("uvicorn.error").removeFilter(quiet)


class _StartupFailure(logging.Filter):
    """Drops uvicorn's error records (the traceback, "Application startup failed") once the catalogue failed
    to open: ``serve`` says why in one line instead."""

    def __init__(self, app: object) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        failed = getattr(getattr(self.app, "state", None), "startup_error", None)
        return failed is None or record.levelno < logging.ERROR
