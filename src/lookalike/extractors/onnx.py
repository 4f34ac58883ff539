"""An extractor backed by an ONNX graph, served with onnxruntime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.config import num_threads
from lookalike.errors import ModelLoadError
from lookalike.extractors.base import Extractor, PreprocessCfg, l2_normalize

__all__ = ["OnnxExtractor", "onnx_input_size"]


def _spatial(shape: list, layout: str) -> tuple[object, object, object]:
    """``(channels, height, width)`` of a 4-D image input's declared shape (ints, or names/None if dynamic)."""
    if layout == "NHWC":
        return shape[3], shape[1], shape[2]
    return shape[1], shape[2], shape[3]


def _fixed_size(shape: list, layout: str) -> int | None:
    """The square side a 4-D input fixes, or None when its spatial axes are dynamic."""
    if len(shape) != 4:
        return None
    _, h, w = _spatial(shape, layout)
    return h if isinstance(h, int) and h > 0 and h == w else None


def onnx_input_size(path: str | os.PathLike[str], layout: str = "NCHW") -> int | None:
    """The square picture side the ONNX graph at ``path`` takes (e.g. 260 for EfficientNet-Lite2), or None
    when its spatial axes are dynamic (any size runs) or not square."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
    return _fixed_size(list(session.get_inputs()[0].shape), layout)


class OnnxExtractor(Extractor):
    """Runs an ONNX graph whose first output is (n, d) or a (n, c, h, w) feature map (average-pooled).

    The graph's first input takes a batch of :class:`PreprocessCfg` outputs.
    """

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        preprocess_cfg: PreprocessCfg,
        threads: int | None = None,
        batch_size: int = 32,
        spin: bool | None = None,
    ) -> None:
        """``threads``: onnxruntime intra-op threads (default: the usable cores, or
        ``$LOOKALIKE_THREADS``); ``spin``: let idle threads spin-wait between operators (default on; off
        with ``LOOKALIKE_ORT_SPIN=0``, kinder to other processes on a shared machine). Spinning makes
        one query 15-30 % faster, but in an ingest the spinning threads take the cores that decoding
        and writing need: :meth:`bulk` is this model without it."""
        import onnxruntime as ort

        self.name = name
        self.path = Path(path)
        self.preprocess_cfg = preprocess_cfg
        self.batch_size = batch_size
        self._threads = threads
        self._bulk: OnnxExtractor | None = None
        if not self.path.is_file():
            raise ModelLoadError(f"model file for {name!r} not found: {self.path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or num_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if spin is None:
            spin = os.environ.get("LOOKALIKE_ORT_SPIN", "1") != "0"
        self.spin = spin
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"cannot load ONNX model {self.path}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self._check_input()
        self.dim = self._probe_dim()

    def _check_input(self) -> None:
        """Refuse a graph whose declared input does not take this preprocessing's pictures."""
        cfg = self.preprocess_cfg
        shape = list(self._session.get_inputs()[0].shape)
        where = f"ONNX model {self.name!r} ({self.path})"
        if len(shape) != 4:
            raise ModelLoadError(f"{where} takes a {len(shape)}-D input {shape}, not a batch of pictures (4-D)")
        channels, h, w = _spatial(shape, cfg.layout)
        if isinstance(channels, int) and channels != 3:
            other = "NHWC" if cfg.layout == "NCHW" else "NCHW"
            if _spatial(shape, other)[0] == 3:
                raise ModelLoadError(f"{where} takes {other} input {shape}, not {cfg.layout}: set layout {other}")
            raise ModelLoadError(f"{where} takes {channels} colour channels {shape}, not 3 (RGB)")
        for side in (h, w):
            if isinstance(side, int) and side > 0 and side != cfg.size:
                real = f"{h}x{w}" if h != w else str(h)
                raise ModelLoadError(
                    f"{where} takes {real}-pixel pictures (input {shape}), but its preprocessing gives "
                    f"{cfg.size}x{cfg.size}: set size {h}" + ("" if h == w else " (and a square input)")
                )

    def _probe_dim(self) -> int:
        """Run one dummy batch of two pictures: the embedding's dimension, checked to be ``(batch, dim)``."""
        s = self.preprocess_cfg.size
        probe = np.zeros((2, 3, s, s) if self.preprocess_cfg.layout == "NCHW" else (2, s, s, 3), np.float32)
        where = f"ONNX model {self.name!r} ({self.path})"
        try:
            out = self._run(probe)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{where} fails on a batch of two {s}x{s} pictures: {exc}") from exc
        if out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 1:
            raise ModelLoadError(
                f"{where} gives output of shape {list(out.shape)} for a batch of two pictures; an embedding model "
                "gives (batch, dim) (or a (batch, channels, h, w) feature map, average-pooled)"
            )
        return int(out.shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output], {self._input: batch.astype(np.float32, copy=False)})[0]
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))
        elif out.ndim == 3:  # token sequences: mean over tokens
            out = out.mean(axis=1)
        return out

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        return l2_normalize(self._run(batch))

    def bulk(self) -> OnnxExtractor:
        """This model in a second session whose threads sleep rather than spin between operators
        (created once, on first use). A 44,441-picture ingest took 171 s with it, 188 s spinning."""
        if not self.spin:
            return self
        if self._bulk is None:
            self._bulk = OnnxExtractor(
                self.name, self.path, self.preprocess_cfg, self._threads, self.batch_size, spin=False
            )
        return self._bulk

    def describe(self) -> dict:
        d = super().describe()
        d["path"] = str(self.path)
        return d
