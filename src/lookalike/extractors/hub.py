"""CLIP, FashionCLIP, SigLIP and DINOv2 checkpoints run with Hugging Face ``transformers``.

Names: ``clip:<dir-or-hub-id>``, ``fashionclip:<...>``, ``siglip:<...>``, ``dinov2:<...>`` (an empty
reference means the family's default checkpoint), plus the registered names ``clip-vit-b32``,
``fashion-clip``, ``siglip-base`` and ``dinov2-small``, available when their weights are in the local
Hugging Face cache. Preprocessing comes from the checkpoint's own ``preprocessor_config.json``; the
embedding is ``get_image_features`` for CLIP/SigLIP and the (layer-normed) CLS token for DINOv2.

torch and transformers are imported only when a model is built (``pip install 'lookalike[hub]'``).
Nothing is downloaded when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set.

This module holds the extractor; the families, their preprocessing and the checkpoint lookup are in
:mod:`lookalike.extractors.hub_config` (re-exported here), the registered names in
:mod:`lookalike.extractors.hub_names`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import num_threads
from lookalike.errors import ModelLoadError
from lookalike.extractors.base import Extractor, l2_normalize
from lookalike.extractors.hub_config import (
    _PROCESSOR_FILES,
    HUB_FAMILIES,
    HubFamily,
    HubPreprocessCfg,
    HubSource,
    _hub_kwargs,
    _offline_env,
    in_hf_cache,
    preprocess_cfg_from_processor,
    resolve_source,
)

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
