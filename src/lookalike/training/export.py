"""Export a trained :class:`~lookalike.training.model.FashionEmbedder` to ONNX and check it.

The graph takes ``x``: (n, 3, 224, 224) float32, pixels ``(p - 127) / 128``, and returns ``embedding``:
(n, d), already L2-normalised. A JSON sidecar next to it records the preprocessing and the run summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lookalike.extractors.base import PreprocessCfg
from lookalike.extractors.export import export_embedding_onnx
from lookalike.training.model import FashionEmbedder

__all__ = ["check_onnx", "compare_speed", "export_embedder"]


def export_embedder(
    model: FashionEmbedder,
    out_path: str | os.PathLike[str],
    preprocess: PreprocessCfg,
    meta: dict[str, Any] | None = None,
) -> tuple[Path, float]:
    """Write ``model`` to ``out_path`` (atomically) and a ``.json`` sidecar; returns (path, the lowest
    torch-vs-onnxruntime cosine over a check batch)."""
    model = model.eval()
    size = preprocess.size
    out = export_embedding_onnx(model, size, out_path)
    cosine = check_onnx(model, out, size)
    sidecar = {"preprocess": preprocess.to_dict(), "output": "embedding", "normalised": True}
    if meta:
        sidecar["training"] = meta
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return out, cosine


def check_onnx(model: FashionEmbedder, path: Path, size: int = 224, n: int = 4, seed: int = 0) -> float:
    """Lowest cosine between torch and onnxruntime embeddings of a seeded batch of smooth images."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    small = rng.uniform(-1, 1, (n, 3, 8, 8)).astype(np.float32)
    x = torch.nn.functional.interpolate(torch.from_numpy(small), size=(size, size), mode="bilinear")
    with torch.no_grad():
        ref = model(x).numpy()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})[0]
    num = (ref * got).sum(axis=1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
    return float((num / np.maximum(den, 1e-12)).min())


def compare_speed(
    paths: dict[str, Path], size: int = 224, batch: int = 32, threads: int = 2, rounds: int = 5
) -> dict[str, float]:
    """Images/s of each ONNX graph with onnxruntime (same threads, same batch), measured side by side:
    the models take turns, ``rounds`` times, and each keeps its best round (the least disturbed by
    other work on the machine)."""
    import time

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    sessions = {
        name: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for name, p in paths.items()
    }
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    best = dict.fromkeys(sessions, 0.0)
    for sess in sessions.values():  # warm-up
        sess.run(None, {sess.get_inputs()[0].name: x})
    for _ in range(rounds):
        for name, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, {sess.get_inputs()[0].name: x})
            best[name] = max(best[name], batch / (time.perf_counter() - t0))
    return best
