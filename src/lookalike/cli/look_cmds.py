"""``lookalike look`` (the garments of a photo, each with its products: 'shop the look') and
``lookalike train-detector`` (the garment detector those garments come from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lookalike.cli.options import (
    AllowPrivateOpt,
    BackendOpt,
    CatalogArg,
    DatasetsOpt,
    QuietOpt,
    TokenOpt,
    UriOpt,
    open_catalog,
    out,
)

__all__ = ["look", "train_detector"]


def look(
    catalog: CatalogArg,
    photo: Annotated[str, typer.Argument(help="A photo: an image path or http(s) URL.")],
    k: Annotated[int, typer.Option("--top", "-k", "--k", help="Products per garment.")] = 5,
    limit: Annotated[int, typer.Option(help="At most this many garments, best first.")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line: each garment with its box and hits.")] = False,
    allow_private_urls: AllowPrivateOpt = False,
    backend: BackendOpt = "embedded",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Shop the look: find the garments in a photo and, for each, the products most like it (its box searched as a
    region, as 'lookalike search CATALOG PHOTO --region x0,y0,x1,y1' does)."""
    from lookalike.catalog.query import check_k
    from lookalike.imaging import FetchSettings

    check_k(k)
    settings = FetchSettings(allow_private=allow_private_urls)
    is_url = photo.lower().startswith(("http://", "https://"))
    with open_catalog(catalog, backend, uri, token, fetch_settings=settings) as cat:
        where = {"url": photo} if is_url else {"image": Path(photo)}
        looks = cat.shop_the_look(**where, k=k, limit=limit)
        if as_json:
            rows = [{**lk.garment.to_dict(), "hits": [_hit(r, h) for r, h in enumerate(lk.result.hits, 1)]}
                    for lk in looks]  # fmt: skip
            print(json.dumps({"photo": photo, "garments": rows}))
            return
        if not looks:
            out.print(f"No garment found in {photo}.", highlight=False, markup=False)
            return
        for n, lk in enumerate(looks, start=1):
            g = lk.garment
            box = ",".join(f"{v:.3f}" for v in g.box)
            table = Table(title=f"{n}. {g.kind or 'other'} ({g.score:.2f}) · --region {box}", title_justify="left")
            for col in ("#", "score", "id", "title", "type", "colour"):
                table.add_column(col, justify="right" if col in ("#", "score") else "left")
            for rank, h in enumerate(lk.result.hits, start=1):
                p = h.product
                cells = (h.id, p.title or "", p.article_type or "", p.colour or "")
                table.add_row(str(rank), f"{h.order_key:.3f}", *(escape(c) for c in cells))
            out.print(table, soft_wrap=False)


def _hit(rank: int, h) -> dict:  # type: ignore[no-untyped-def,type-arg]
    p = h.product
    return {"rank": rank, "id": h.id, "score": round(h.score, 6), "rank_score": round(h.order_key, 6),
            "title": p.title, "article_type": p.article_type, "colour": p.colour}  # fmt: skip


def train_detector(
    datasets: DatasetsOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder: lookalike-detector.onnx and .json.")] = Path(
        ".lookalike/detector-run"
    ),
    cache_dir: Annotated[Path | None, typer.Option(help="Catalogue-mask cache (default: <out>/cache).")] = None,
    outfits: Annotated[int, typer.Option(help="Training pictures (outfits of training-split cut-outs).")] = 4000,
    test_outfits: Annotated[int, typer.Option(help="Held-out pictures (test-split cut-outs).")] = 500,
    epochs: Annotated[int, typer.Option(help="Passes of the head over the training pictures.")] = 16,
    size: Annotated[int, typer.Option(help="Input size of the model (pixels, square; a multiple of 32).")] = 192,
    photos: Annotated[int, typer.Option(help="Shoppers' photos (training contributors) cut into backgrounds.")] = 600,
    real_photos: Annotated[
        int, typer.Option(help="Shoppers' photos (training contributors) trained on, their garment mask boxed.")
    ] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of the outfits and the initialisation.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Tiny runs: at most N catalogue products.")] = None,
    torch_threads: Annotated[int, typer.Option(help="torch and onnxruntime threads.")] = 1,
    workers: Annotated[int, typer.Option(help="Processes drawing the outfits.")] = 2,
    quiet: QuietOpt = False,
) -> None:
    """Train the garment detector on outfits of catalogue cut-outs (home scenes, white and photographic
    backgrounds); report box recall and kinds on held-out outfits (test-split products), export ONNX."""
    from lookalike.cli.train_parts import run_training
    from lookalike.training.detector import train_detector as run

    run_training(
        run, datasets, out_dir, cache_dir, quiet,
        size=size, outfits=outfits, test_outfits=test_outfits, epochs=epochs, photos=photos, real_photos=real_photos,
        seed=seed, threads=torch_threads, workers=workers, limit=limit,
    )  # fmt: skip
