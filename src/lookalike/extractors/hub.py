"""CLIP, FashionCLIP, SigLIP and DINOv2 checkpoints run with Hugging Face ``transformers``.

Names: ``clip:<dir-or-hub-id>``, ``fashionclip:<...>``, ``siglip:<...>``, ``dinov2:<...>`` (an empty
reference means the family's default checkpoint), plus the registered names ``clip-vit-b32``,
``fashion-clip``, ``siglip-base`` and ``dinov2-small``, available when their weights are in the local
Hugging Face cache. Preprocessing comes from the checkpoint's own ``preprocessor_config.json``; the
embedding is ``get_image_features`` for CLIP/SigLIP and the (layer-normed) CLS token for DINOv2.

torch and transformers are imported only when a model is built (``pip install 'lookalike[hub]'``).
Nothing is downloaded when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from lookalike.config import num_threads
from lookalike.errors import ModelLoadError
from lookalike.extractors.base import Extractor, PreprocessCfg, l2_normalize
from lookalike.extractors.registry import ExtractorSpec, register_extractor, register_extractor_prefix

__all__ = [
    "HUB_FAMILIES",
    "HubExtractor",
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


def _import_backends(name: str) -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelLoadError(
            f"extractor {name!r} needs torch and transformers: pip install 'lookalike[hub]' (missing: {exc.name})"
        ) from exc
    return torch, transformers


def _features(model: Any, embedding: str, pixel_values: Any) -> Any:
    """The raw (n, d) embedding tensor of a batch (shared by inference and ONNX export)."""
    if embedding == "image_features":
        out = model.get_image_features(pixel_values=pixel_values)
        return out if hasattr(out, "shape") else out.pooler_output  # transformers 4 / 5
    out = model(pixel_values=pixel_values)
    pooled = getattr(out, "pooler_output", None)
    return pooled if pooled is not None else out.last_hidden_state[:, 0]


# --- the extractor ------------------------------------------------------------------------------
class HubExtractor(Extractor):
    """A transformers CLIP / SigLIP / DINOv2 vision model; L2-normalised float32 (n, d) embeddings.

    ``source`` is a checkpoint directory or hub repo id; ``device`` a torch device ("cpu", "cuda");
    ``local_files_only`` defaults to whether ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set.
    """

    def __init__(
        self,
        name: str,
        family: str,
        source: str | HubSource = "",
        *,
        threads: int | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        local_files_only: bool | None = None,
    ) -> None:
        if family not in HUB_FAMILIES:
            raise ModelLoadError(f"unknown model family {family!r} (known: {', '.join(HUB_FAMILIES)})")
        self.name = name
        self.family = HUB_FAMILIES[family]
        self.source = source if isinstance(source, HubSource) else resolve_source(source, self.family)
        self.batch_size = batch_size
        self.device = device
        torch, transformers = _import_backends(name)
        self._torch = torch
        offline = _offline_env() if local_files_only is None else local_files_only
        local_only = offline or self.source.local_dir
        if self.source.local_dir and not (Path(self.source.ref) / "config.json").is_file():
            raise ModelLoadError(f"{self.source.ref} is not a transformers checkpoint (no config.json)")
        try:
            config = transformers.AutoConfig.from_pretrained(self.source.ref, **_hub_kwargs(local_only))
        except (OSError, ValueError) as exc:
            raise self._unreachable(exc, offline) from exc
        if config.model_type not in self.family.model_types:
            raise ModelLoadError(
                f"{self.source.ref} is a {config.model_type!r} checkpoint, not {self.family.label} "
                f"(expected model_type {' or '.join(self.family.model_types)})"
            )
        self.preprocess_cfg: HubPreprocessCfg = preprocess_cfg_from_processor(
            self._processor_config(local_only), self.family
        )
        try:
            model = transformers.AutoModel.from_pretrained(self.source.ref, **_hub_kwargs(local_only))
        except Exception as exc:  # missing files (OSError) or bad weights (safetensors, torch errors)
            raise self._unreachable(exc, offline) from exc
        self._model = model.float().eval().to(device)
        torch.set_num_threads(threads or num_threads())
        s = self.preprocess_cfg.size
        try:
            probe = self._run(np.zeros((1, 3, s, s), dtype=np.float32))
        except Exception as exc:  # a model/config mismatch surfaces as any torch error
            raise ModelLoadError(f"{name}: the model rejects its preprocessor's {s}px input: {exc}") from exc
        self.dim = int(probe.shape[1])

    def _unreachable(self, exc: Exception, offline: bool) -> ModelLoadError:
        ref, prefix = self.source.ref, self.family.prefix
        if self.source.local_dir:
            return ModelLoadError(f"cannot load the {self.family.label} checkpoint in {ref}: {exc}")
        hint = (
            f"download them on a machine with internet (`hf download {ref} --local-dir DIR`) "
            f"and pass the directory: '{prefix}:DIR'"
        )
        if offline:
            return ModelLoadError(f"weights for {ref} not found locally (offline mode); {hint}")
        return ModelLoadError(f"weights for {ref} could not be fetched from the Hugging Face Hub ({exc}); {hint}")

    def _processor_config(self, local_only: bool) -> dict[str, Any] | None:
        """The checkpoint's image processor config, or None (then the family defaults apply)."""
        for filename in _PROCESSOR_FILES:
            path = self._checkpoint_file(filename, local_only)
            if path is None:
                continue
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"{path}: unreadable preprocessor config ({exc})") from exc
            if isinstance(data.get("image_processor"), dict):  # processor_config.json nests it
                data = data["image_processor"]
            if "size" in data or "image_mean" in data:
                return dict(data)
        logger.warning("%s has no preprocessor config; using %s defaults", self.source.ref, self.family.label)
        return None

    def _checkpoint_file(self, filename: str, local_only: bool) -> Path | None:
        """``filename`` from the checkpoint directory or the hub (cache), or None when it has none."""
        if self.source.local_dir:
            path = Path(self.source.ref) / filename
            return path if path.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            return Path(hf_hub_download(self.source.ref, filename, **_hub_kwargs(local_only)))
        except (OSError, EntryNotFoundError):
            return None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            out = _features(self._model, self.family.embedding, x)
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self._run(batch))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["family"] = self.family.prefix
        d["source"] = self.source.ref
        return d

    def export_onnx(self, path: str | os.PathLike[str]) -> Path:
        """Write the vision model as ONNX (input ``x``: (n, 3, S, S), output ``embedding``: (n, d), raw).

        A sidecar ``.json`` next to it records the preprocessing, so ``create_extractor(path)`` serves it
        with onnxruntime.
        """
        from lookalike.extractors.export import export_embedding_onnx, write_sidecar

        torch = self._torch
        model, embedding = self._model, self.family.embedding

        class Embed(torch.nn.Module):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: Any) -> Any:
                return _features(self.model, embedding, x)

        try:
            out = export_embedding_onnx(Embed().cpu().eval(), self.preprocess_cfg.size, path, quiet=True)
        finally:
            self._model.to(self.device)
        write_sidecar(out, {"source": self.name, "dim": self.dim, "preprocess": self.preprocess_cfg.to_dict()})
        return out


# --- registration -------------------------------------------------------------------------------
def _hub_factory(name: str, family: str, source: HubSource, **kwargs: Any) -> Extractor:
    return HubExtractor(name, family, source, **kwargs)


def _prefix_spec(family: str, ref: str) -> ExtractorSpec:
    source = resolve_source(ref, family)
    name = f"{family}:{source.ref}"
    return ExtractorSpec(
        name=name,
        factory=partial(_hub_factory, name, family, source),
        description=f"{HUB_FAMILIES[family].label} checkpoint {source.ref} (transformers)",
        kind="hub",
        is_available=partial(_source_available, source),
        extra={"family": family, "source": source.ref},
    )


for _family in HUB_FAMILIES.values():
    register_extractor_prefix(
        _family.prefix,
        partial(_prefix_spec, _family.prefix),
        description=f"{_family.label} checkpoint: {_family.prefix}:<directory or hub id>",
    )

# name -> (family, hub repo id, dimension, description)
_NAMED: dict[str, tuple[str, str, int, str]] = {
    "clip-vit-b32": ("clip", "openai/clip-vit-base-patch32", 512, "OpenAI CLIP ViT-B/32"),
    "fashion-clip": ("fashionclip", "patrickjohncyh/fashion-clip", 512, "FashionCLIP (CLIP ViT-B/32)"),
    "siglip-base": ("siglip", "google/siglip-base-patch16-224", 768, "SigLIP ViT-B/16 224px"),
    "dinov2-small": ("dinov2", "facebook/dinov2-small", 384, "DINOv2 ViT-S/14 CLS token"),
}

for _name, (_fam, _repo, _dim, _desc) in _NAMED.items():
    register_extractor(
        _name,
        description=f"{_desc} (transformers; weights from the HF cache: {_repo})",
        dim=_dim,
        kind="hub",
        is_available=partial(in_hf_cache, _repo),
    )(partial(_hub_factory, _name, _fam, HubSource(_repo, False)))
