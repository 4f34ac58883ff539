"""INT8 variants of ONNX extractors: onnxruntime static quantisation calibrated on catalogue pictures.

``quantize_extractor("efficientnet-lite0")`` writes ``efficientnet-lite0-int8.onnx`` and a spec file
``efficientnet-lite0-int8.json`` to the user model folder, so the variant is a registered extractor
(``create_extractor("efficientnet-lite0-int8")``) in every process. :func:`measure_quality` runs the
EVALUATION.md tasks (:mod:`lookalike.evaluate`) with both models and records the loss in mP@10 in that
spec; :func:`preferred_extractor` then answers the INT8 name for the FP32 one when the loss is at most
``max_loss`` (0.01) and the FP32 weights are still the ones that were quantised.

Choices, measured on EfficientNet-Lite0 (docs/performance.md): QOperator format (fused QLinearConv
kernels; the QDQ format ran slower here), per-channel int8 weights, uint8 activations (u8s8 uses
AVX-512 VNNI), percentile calibration (99.999), and the convolutions that read the picture itself kept
in FP32 (quantising the stem alone cost 0.1 in cosine to the FP32 embedding).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lookalike.config import user_model_dir
from lookalike.errors import ExtractorNotFoundError, LookalikeError, ModelLoadError, SourceError
from lookalike.extractors.base import Extractor, PreprocessCfg
from lookalike.extractors.identity import file_sha256, spec_weights, weights_file

__all__ = [
    "INT8_SUFFIX",
    "MAX_QUALITY_LOSS",
    "QuantizeResult",
    "calibration_paths",
    "int8_name",
    "measure_quality",
    "preferred_extractor",
    "quantize_extractor",
    "quantize_onnx",
]

INT8_SUFFIX = "-int8"
MAX_QUALITY_LOSS = 0.01
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
Mode = Literal["static", "dynamic"]


@dataclass
class QuantizeResult:
    """What :func:`quantize_extractor` wrote."""

    name: str
    source: str
    path: Path
    spec_path: Path
    calibration_images: int
    seconds: float
    quality: dict[str, Any] = field(default_factory=dict)


def int8_name(name: str) -> str:
    """The registry name of ``name``'s INT8 variant."""
    return f"{name}{INT8_SUFFIX}"


# --- calibration pictures -------------------------------------------------------------------------
def _csv_images(path: Path) -> list[Path]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise SourceError(f"{path}: no rows")
    column = next((c for c in rows[0] if c.strip().lower() in ("image", "image_path", "path", "file")), None)
    if column is None:
        raise SourceError(f"{path}: no image column (image, image_path, path or file)")
    out = []
    for row in rows:
        value = (row.get(column) or "").strip()
        if value and not value.lower().startswith(("http://", "https://")):
            p = Path(value)
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def calibration_paths(
    source: str | os.PathLike[str] | None = None,
    n: int = 256,
    seed: int = 0,
    datasets: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """``n`` pictures (seeded sample) from a folder, a CSV with an image column, or by default the
    catalogue dataset ``fashion-product-images-small`` of ``datasets`` (default ``$LOOKALIKE_DATASETS``):
    its products outside the EVALUATION.md test split (ids not divisible by 5)."""
    if source is None:
        from lookalike.evaluate.datasets import default_datasets_root

        root = Path(datasets) if datasets is not None else default_datasets_root()
        path = root / "fashion-product-images-small" / "labels.csv"
        if not path.is_file():
            raise SourceError(f"no calibration pictures given and {path} is missing; pass a folder or CSV")
        paths = [p for p in _csv_images(path) if not (p.stem.isdigit() and int(p.stem) % 5 == 0)]
    else:
        path = Path(source)
        if path.is_dir():
            paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths = _csv_images(path)
        else:
            raise SourceError(f"calibration source not found: {path}")
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise SourceError(f"no calibration pictures found in {path}")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
    return [paths[i] for i in sorted(pick)]


def _calibration_arrays(cfg: PreprocessCfg, paths: Sequence[Path]) -> list[np.ndarray]:
    """The preprocessed calibration pictures (unreadable ones are left out)."""
    from lookalike.imaging import load_image

    arrays = []
    for p in paths:
        try:
            arrays.append(cfg.to_array(load_image(p, draft_size=cfg.size)))
        except LookalikeError:
            continue
    if not arrays:
        raise SourceError("none of the calibration pictures could be read")
    return arrays


class _Reader:
    """onnxruntime ``CalibrationDataReader``: preprocessed pictures in batches."""

    def __init__(self, input_name: str, arrays: list[np.ndarray], batch: int = 16) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [np.stack(arrays[i : i + batch]) for i in range(0, len(arrays), batch)]
        )
        self._input = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._input: batch}


def _nodes(model_path: Path, op_types: tuple[str, ...]) -> list[str]:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in op_types]


def _matching(model_path: Path, patterns: Sequence[str]) -> list[str]:
    if not patterns:
        return []
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return [n.name for n in model.graph.node if any(fnmatch.fnmatch(n.name, p) for p in patterns)]


def _runs(model_path: Path, input_name: str, sample: np.ndarray) -> bool:
    """Whether onnxruntime can load and run the quantised graph (some per-channel kernels are missing:
    QLinearMatMul refuses per-column zero points)."""
    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        session.run(None, {input_name: sample})
        return True
    except Exception:
        return False


def _input_nodes(model_path: Path) -> list[str]:
    """Names of the Conv/MatMul nodes that read the graph's (image) input directly."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul") and set(n.input) & inputs]


def quantize_onnx(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    cfg: PreprocessCfg,
    calibration: Sequence[Path],
    mode: Mode = "static",
    keep_input_fp32: bool = True,
    percentile: float = 99.999,
    op_types: Sequence[str] | None = None,
    keep_fp32: Sequence[str] = (),
    keep_first: int = 0,
) -> int:
    """Quantise an ONNX graph to INT8; returns how many calibration pictures were used (0: dynamic).

    ``op_types``: the operators to quantise (default every operator onnxruntime can: quantising only
    the convolutions was slower than FP32 on EfficientNet-Lite, a Quantize/Dequantize pair around each);
    ``keep_fp32``: node-name patterns (``fnmatch``) left in FP32, e.g. ``/head/*``; ``keep_first``: the
    first convolutions (graph order) left in FP32, where colour and texture live at full resolution."""
    try:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:  # onnxruntime's quantiser needs the onnx package
        raise ModelLoadError(f"quantisation needs the onnx package: pip install 'lookalike[torch]' ({exc})") from exc

    src, dst = Path(source), Path(target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lookalike-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        except Exception:  # symbolic shape inference fails on some graphs: quantise the graph as it is
            pre = src
        out = Path(tmp) / "int8.onnx"
        try:
            if mode == "dynamic":
                quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True)
                used = 0
            else:
                import onnx

                input_name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
                arrays = _calibration_arrays(cfg, calibration)
                keep = (_input_nodes(pre) if keep_input_fp32 else []) + _matching(pre, keep_fp32)
                keep += _nodes(pre, ("Conv",))[:keep_first]
                # Conv per channel everywhere; if the graph then fails to run, keep MatMul/Gemm in FP32
                for exclude in (keep, keep + _nodes(pre, ("MatMul", "Gemm"))):
                    quantize_static(
                        str(pre),
                        str(out),
                        _Reader(input_name, arrays),
                        quant_format=QuantFormat.QOperator,
                        per_channel=True,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        nodes_to_exclude=exclude,
                        op_types_to_quantize=list(op_types) if op_types else None,
                        extra_options={"CalibPercentile": percentile},
                    )
                    if _runs(out, input_name, arrays[0][None]):
                        break
                else:
                    raise ModelLoadError(f"the INT8 graph of {src} does not run in onnxruntime")
                used = len(arrays)
        except LookalikeError:
            raise
        except Exception as exc:  # onnxruntime's quantiser raises untyped errors
            raise ModelLoadError(f"cannot quantise {src}: {type(exc).__name__}: {exc}") from exc
        shutil.move(str(out), str(dst))
    return used


# --- registry ---------------------------------------------------------------------------------------
def _onnx_source(extractor: Extractor) -> Path:
    path = weights_file(extractor)
    if path is None:
        raise ExtractorNotFoundError(
            f"{extractor.name!r} is not an ONNX extractor; export it to ONNX and `lookalike models add` it first"
        )
    return path


def _spec_path(name: str) -> Path:
    return user_model_dir() / f"{name}.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def quantize_extractor(
    name: str,
    calibration: str | os.PathLike[str] | None = None,
    images: int = 256,
    mode: Mode = "static",
    seed: int = 0,
    keep_fp32: Sequence[str] = (),
    keep_first: int = 0,
    datasets: str | os.PathLike[str] | None = None,
) -> QuantizeResult:
    """Quantise the ONNX extractor ``name`` and register the result as ``<name>-int8`` (persisted);
    ``keep_fp32``, ``keep_first``: what to leave in FP32 (see :func:`quantize_onnx`); ``datasets``: where
    the default calibration pictures are (without ``calibration``)."""
    from lookalike.extractors import create_extractor

    if name.endswith(INT8_SUFFIX):
        raise ExtractorNotFoundError(f"{name!r} is already an INT8 model")
    started = time.perf_counter()
    extractor = create_extractor(name)
    src = _onnx_source(extractor)
    if _nodes(src, ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")):
        raise ExtractorNotFoundError(f"{name!r} is already an INT8 model ({src.name}); quantise its FP32 weights")
    cfg = extractor.preprocess_cfg or PreprocessCfg()
    paths = calibration_paths(calibration, images, seed, datasets) if mode == "static" else []
    qname = int8_name(name)
    target = user_model_dir() / f"{qname}.onnx"
    used = quantize_onnx(src, target, cfg, paths, mode=mode, keep_fp32=keep_fp32, keep_first=keep_first)
    spec = {
        "type": "onnx",
        "name": qname,
        "path": str(target),
        "preprocess": cfg.to_dict(),
        "description": f"INT8 ({mode}, onnxruntime) of {name}",
        "dim": extractor.dim,
        "quantization": {
            "source": name,
            "source_path": str(src),
            "source_sha256": file_sha256(src),
            "mode": mode,
            "keep_fp32": list(keep_fp32),
            "keep_first": keep_first,
            "calibration_images": used,
            "calibration_source": str(calibration) if calibration else "fashion-product-images-small (train ids)",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "quality": None,
        },
    }
    spec_path = _spec_path(qname)
    _write_json(spec_path, spec)
    return QuantizeResult(qname, name, target, spec_path, used, time.perf_counter() - started)


def _read_spec(name: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_spec_path(name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def measure_quality(
    name: str,
    datasets: str | os.PathLike[str] | None = None,
    max_queries: int | None = 500,
    max_loss: float = MAX_QUALITY_LOSS,
    tasks: Sequence[str] = ("catalog", "photo"),
    seed: int = 0,
) -> dict[str, Any]:
    """Run the EVALUATION.md ``tasks`` with ``name`` and ``name-int8``; record the loss in the INT8 spec.

    Every mP@10 headline metric of every task is compared; the variant is accepted when the largest
    loss is at most ``max_loss``. ``max_queries`` subsamples the queries (seeded; the galleries stay
    whole); ``None`` runs every query.
    """
    from lookalike.config import lookalike_home
    from lookalike.evaluate import datasets as ds
    from lookalike.evaluate.harness import EmbeddingCache, run_evaluation

    qname = int8_name(name)
    spec = _read_spec(qname)
    if spec is None:
        raise ExtractorNotFoundError(f"no INT8 variant of {name!r}; run `lookalike models quantize {name}`")
    builders = {"catalog": lambda: ds.catalog_task(datasets, split="test"), "photo": lambda: ds.photo_task(datasets)}
    unknown = [t for t in tasks if t not in builders]
    if unknown:
        raise SourceError(f"unknown evaluation task(s) {', '.join(unknown)} (use catalog, photo)")
    built = [ds.subsample_queries(builders[t](), max_queries, seed) for t in tasks]
    results = run_evaluation(built, [name, qname], 10, EmbeddingCache(lookalike_home() / "eval-cache"))
    by = {(r.model, r.task.name): r.headline() for r in results}
    metrics: dict[str, dict[str, float]] = {}
    for task in built:
        fp, q8 = by[(name, task.name)], by[(qname, task.name)]
        for metric, value in fp.items():
            if "mP@10" in metric:
                metrics[f"{task.name} {metric}"] = {
                    "fp32": round(value, 4),
                    "int8": round(q8[metric], 4),
                    "loss": round(value - q8[metric], 4),
                }
    worst = max((m["loss"] for m in metrics.values()), default=float("inf"))
    quality = {
        "metrics": metrics,
        "max_loss": round(worst, 4),
        "threshold": max_loss,
        "accepted": bool(worst <= max_loss),
        "queries_per_task": {t.name: len(t.queries) for t in built},
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    spec.setdefault("quantization", {})["quality"] = quality
    _write_json(_spec_path(qname), spec)
    return quality


def preferred_extractor(name: str) -> str:
    """``name-int8`` when it was measured within the quality threshold and quantised from the FP32 weights
    that ``name`` loads now; otherwise ``name``."""
    spec = _read_spec(int8_name(name))
    if spec is None:
        return name
    q = spec.get("quantization") or {}
    quality = q.get("quality") or {}
    if q.get("source") != name or not quality.get("accepted") or not Path(str(spec.get("path", ""))).is_file():
        return name
    source = Path(str(q.get("source_path", "")))
    try:
        current = spec_weights(name)
        if current is None or current.resolve() != source.resolve():
            return name
        if file_sha256(source) != q.get("source_sha256"):
            return name
    except (LookalikeError, OSError):
        return name
    return int8_name(name)
