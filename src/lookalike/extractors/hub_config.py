"""Hugging Face checkpoints without torch: the model families, their preprocessing, where weights are.

A family (``clip``, ``fashionclip``, ``siglip``, ``dinov2``) says which checkpoints it accepts and how
it embeds; :func:`preprocess_cfg_from_processor` maps a checkpoint's ``preprocessor_config.json`` to a
:class:`HubPreprocessCfg`; :func:`resolve_source` and :func:`in_hf_cache` say where the weights are.
Nothing here imports torch or transformers (``huggingface_hub`` only inside functions).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from lookalike.errors import ModelLoadError
from lookalike.extractors.base import PreprocessCfg

__all__ = [
    "HUB_FAMILIES",
    "HubFamily",
    "HubPreprocessCfg",
    "HubSource",
    "in_hf_cache",
    "preprocess_cfg_from_processor",
    "resolve_source",
]

logger = logging.getLogger(__name__)

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}


@dataclass(frozen=True)
class HubFamily:
    """A model family: which checkpoints it accepts, how it embeds, its processor's defaults."""

    prefix: str
    label: str
    model_types: tuple[str, ...]
    default_source: str
    embedding: Literal["image_features", "cls"]
    default_to_square: bool
    processor_defaults: Mapping[str, Any]


_CLIP_DEFAULTS: dict[str, Any] = {
    "size": {"shortest_edge": 224},
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "resample": 3,
    "image_mean": _OPENAI_MEAN,
    "image_std": _OPENAI_STD,
}
HUB_FAMILIES: dict[str, HubFamily] = {
    "clip": HubFamily(
        "clip", "CLIP", ("clip",), "openai/clip-vit-base-patch32", "image_features", False, _CLIP_DEFAULTS
    ),
    "fashionclip": HubFamily(
        "fashionclip",
        "FashionCLIP",
        ("clip",),
        "patrickjohncyh/fashion-clip",
        "image_features",
        False,
        _CLIP_DEFAULTS,
    ),
    "siglip": HubFamily(
        "siglip",
        "SigLIP",
        ("siglip",),
        "google/siglip-base-patch16-224",
        "image_features",
        True,
        {
            "size": {"height": 224, "width": 224},
            "do_center_crop": False,
            "resample": 3,
            "image_mean": (0.5, 0.5, 0.5),
            "image_std": (0.5, 0.5, 0.5),
        },
    ),
    "dinov2": HubFamily(
        "dinov2",
        "DINOv2",
        ("dinov2", "dinov2_with_registers"),
        "facebook/dinov2-small",
        "cls",
        False,
        {
            "size": {"shortest_edge": 256},
            "do_center_crop": True,
            "crop_size": {"height": 224, "width": 224},
            "resample": 3,
            "image_mean": _IMAGENET_MEAN,
            "image_std": _IMAGENET_STD,
        },
    ),
}


# --- preprocessing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HubPreprocessCfg(PreprocessCfg):
    """:class:`PreprocessCfg` resized the way transformers' image processors do it.

    ``resize_size`` (when set) is the shorter side (``center_crop``) or the square side (``squash``) the
    image is resized to before the centre crop to ``size``; the long side is truncated, not rounded, as
    in ``transformers.image_transforms.get_resize_output_image_size``.
    """

    resize_size: int | None = None

    def resize(self, img: Image.Image) -> Image.Image:
        resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        target = self.resize_size or self.size
        w, h = img.size
        if self.resize_mode == "squash":
            nw = nh = target
        elif self.resize_mode == "center_crop":
            nw, nh = (target, int(target * h / w)) if w <= h else (int(target * w / h), target)
        else:
            return super().resize(img)
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), resample)
        s = self.size
        if (nw, nh) == (s, s):
            return img
        left, top = (nw - s) // 2, (nh - s) // 2
        return img.crop((left, top, left + s, top + s))


def _square_side(value: Any, what: str, default_to_square: bool) -> tuple[str, int]:
    """``("shortest", n)`` or ``("square", n)`` from a processor ``size``/``crop_size`` entry."""
    if isinstance(value, int):
        return ("square" if default_to_square else "shortest"), value
    if isinstance(value, Mapping):
        if "height" in value and "width" in value:
            if int(value["height"]) != int(value["width"]):
                raise ModelLoadError(f"non-square {what} {dict(value)} is not supported")
            return "square", int(value["height"])
        if "shortest_edge" in value and not value.get("longest_edge"):
            return "shortest", int(value["shortest_edge"])
    raise ModelLoadError(f"unsupported {what} in the preprocessor config: {value!r}")


def _triple(value: Any, what: str) -> tuple[float, float, float]:
    values = [float(value)] * 3 if isinstance(value, int | float) else [float(v) for v in value]
    if len(values) != 3:
        raise ModelLoadError(f"{what} must have 3 values, got {value!r}")
    return values[0], values[1], values[2]


def preprocess_cfg_from_processor(processor: Mapping[str, Any] | None, family: str | HubFamily) -> HubPreprocessCfg:
    """Map a transformers image processor config (``preprocessor_config.json``) to a preprocess config.

    Keys the config lacks take the family processor's defaults.
    """
    fam = HUB_FAMILIES[family] if isinstance(family, str) else family
    d = {**fam.processor_defaults, **(processor or {})}
    if not d.get("do_resize", True):
        raise ModelLoadError("preprocessor configs without resizing are not supported")
    mode, side = _square_side(d.get("size"), "size", fam.default_to_square)
    crop = _square_side(d.get("crop_size"), "crop_size", True)[1] if d.get("do_center_crop") else None
    if mode == "shortest" and crop is None:
        raise ModelLoadError("a shortest-edge resize without a centre crop (variable size) is not supported")
    size = crop or side
    resample = d.get("resample", 3)
    if resample not in _PIL_RESAMPLE:
        logger.warning("resample=%r is not supported; using bicubic", resample)
    rescale = float(d.get("rescale_factor", 1 / 255)) if d.get("do_rescale", True) else 1.0
    if d.get("do_normalize", True):
        mean, std = _triple(d.get("image_mean"), "image_mean"), _triple(d.get("image_std"), "image_std")
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return HubPreprocessCfg(
        size=size,
        resize_mode="squash" if mode == "square" else "center_crop",
        mean=(mean[0] / rescale, mean[1] / rescale, mean[2] / rescale),
        std=(std[0] / rescale, std[1] / rescale, std[2] / rescale),
        interpolation=_PIL_RESAMPLE.get(resample, "bicubic"),  # type: ignore[arg-type]
        resize_size=side if side != size else None,
    )


# --- where the weights are ----------------------------------------------------------------------
@dataclass(frozen=True)
class HubSource:
    """A checkpoint: an absolute local directory or a Hugging Face Hub repo id."""

    ref: str
    local_dir: bool


def resolve_source(ref: str, family: str | HubFamily) -> HubSource:
    """A local directory (made absolute) if ``ref`` is one, else a hub repo id; empty: the default."""
    fam = HUB_FAMILIES[family] if isinstance(family, str) else family
    ref = ref.strip() or fam.default_source
    path = Path(ref).expanduser()
    if path.is_dir():
        return HubSource(str(path.resolve()), True)
    if ref.startswith(("/", ".", "~")) or "\\" in ref or not _REPO_ID_RE.match(ref):
        raise ModelLoadError(f"{fam.label} model directory not found: {path}")
    return HubSource(ref, False)


def in_hf_cache(repo_id: str) -> bool:
    """Whether config and weights of ``repo_id`` are in the local HF cache (and transformers is there)."""
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "huggingface_hub")):
        return False
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)

    return cached("config.json") and any(cached(f) for f in _WEIGHT_FILES)


def _source_available(source: HubSource) -> bool:
    if source.local_dir:
        return (Path(source.ref) / "config.json").is_file()
    return in_hf_cache(source.ref)


def _offline_env() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_kwargs(local_only: bool) -> dict[str, Any]:
    """Loader options: one cache for availability checks and loading, whatever the library versions."""
    from huggingface_hub import constants

    return {"local_files_only": local_only, "cache_dir": constants.HF_HUB_CACHE}
