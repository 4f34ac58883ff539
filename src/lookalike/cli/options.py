"""What the commands share: the consoles, option types, catalogue opening and the exit-code boundary."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from lookalike.errors import LookalikeError

__all__ = [
    "AllowPrivateOpt",
    "BackendOpt",
    "CatalogArg",
    "DatasetsOpt",
    "LikeOpt",
    "QuietOpt",
    "TokenOpt",
    "UnlikeOpt",
    "UriOpt",
    "err",
    "interrupted",
    "open_catalog",
    "out",
    "progress_shown",
    "quiet_milvus",
    "quiet_onnx_tools",
    "run_app",
]

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
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
AllowPrivateOpt = Annotated[bool, typer.Option(help="Allow image URLs on private hosts.")]
DatasetsOpt = Annotated[Path | None, typer.Option("--datasets", help="Datasets folder (default: $LOOKALIKE_DATASETS).")]
LikeOpt = Annotated[
    list[str] | None,
    typer.Option("--like", help="A liked product id, repeatable: more like these (alone: 'more like these' only)."),
]
UnlikeOpt = Annotated[
    list[str] | None, typer.Option("--unlike", help="A disliked product id, repeatable: less like these.")
]


def progress_shown(quiet: bool) -> bool:
    """Draw progress bars on a terminal unless ``--quiet``; LOOKALIKE_PROGRESS=1 forces them."""
    return (not quiet and sys.stderr.isatty()) or os.environ.get("LOOKALIKE_PROGRESS") == "1"


def _not_onnx_tools(record: logging.LogRecord) -> bool:
    """Drop the warnings onnxruntime's Python tools send to the root logger; keep every other record."""
    return not (record.levelno < logging.ERROR and f"{os.sep}onnxruntime{os.sep}" in record.pathname)


@contextlib.contextmanager
def quiet_onnx_tools(stdout: bool = False) -> Iterator[None]:
    """For the length of the block, drop what torch's ONNX exporter and onnxruntime's tools say that tells
    the user nothing: tracer and constant-folding warnings (every export is checked against torch after)
    and onnxruntime's C++ warnings; with ``stdout``, whatever is printed (the quantiser's calibration
    chatter). Other warnings still show."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO() if stdout else sys.stdout):
        warnings.filterwarnings("ignore", message=r"Converting a tensor to a Python ", module=r"lookalike\.")
        warnings.filterwarnings("ignore", message=r"Constant folding - Only steps=1 can be constant folded")
        try:
            import onnxruntime as ort
        except ImportError:
            yield
            return
        ort.set_default_logger_severity(3)  # errors only
        root = logging.getLogger()
        root.addFilter(_not_onnx_tools)  # the quantiser warns through the root logger ("Inference failed ...")
        try:
            yield
        finally:
            root.removeFilter(_not_onnx_tools)
            ort.set_default_logger_severity(2)  # onnxruntime's default, warnings


def quiet_milvus() -> None:
    """pymilvus and Milvus Lite log tracebacks; their errors reach the user as one line instead."""
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def open_catalog(  # type: ignore[no-untyped-def]
    catalog: Path, backend: str, uri: str | None, token: str | None, create: bool = False, **kwargs
):
    """Open the catalogue; with ``create``, create it when there is none (``kwargs`` go to both)."""
    from lookalike.catalog import Catalog
    from lookalike.errors import CatalogNotFoundError

    if backend != "embedded":
        quiet_milvus()
        kwargs.update(backend=backend, uri=uri, token=token)
    try:
        return Catalog.open(catalog, **kwargs)
    except CatalogNotFoundError:
        if not create:
            raise
        return Catalog.create(catalog, **kwargs)


def interrupted(message: str) -> NoReturn:
    """Ctrl-C in a long command: one line on stderr saying what was kept, and exit status 130 (SIGINT's)."""
    err.print(f"interrupted: {message}", highlight=False, markup=False)
    raise SystemExit(130)


def run_app(app: typer.Typer) -> None:
    """Run ``app``, turning lookalike errors into one line and an exit code."""
    try:
        code = app(standalone_mode=False, prog_name="lookalike")  # not "python -m ..." when run as a module
        if isinstance(code, int) and code:  # typer returns the code of a typer.Exit, which Ctrl-C becomes (130)
            if code == 130:
                err.print("interrupted")
            raise SystemExit(code)
    except LookalikeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(exc.exit_code if exc.exit_code else 1) from None
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and anything unexpected: one line, no traceback
        known = _known_error(exc)
        if known is not None:
            err.print(f"[red]error:[/] {escape(str(known))}", highlight=False)
            raise SystemExit(known.exit_code) from None
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click/typer usage errors
            exc.show()
            raise SystemExit(exc.exit_code) from None
        err.print(f"[red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None


def _known_error(exc: Exception) -> LookalikeError | None:
    """A full disk (ENOSPC, EDQUOT, SQLITE_FULL) or a damaged product store met outside the library's own
    boundaries, as the lookalike error it is (its exit code: 74, 65); None for anything else."""
    import sqlite3

    from lookalike.errors import CatalogDamagedError
    from lookalike.fsutil import full_disk_error, is_disk_full
    from lookalike.store.health import damaged

    if is_disk_full(exc):
        return full_disk_error(exc, "writing")
    if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
        return CatalogDamagedError(f"the catalogue's product store is damaged ({exc}); run lookalike check")
    return None
