"""The shipped text tower: words -> a vector in the image embedding space of ``lookalike-fashion``.

A query's text is tokenised by the ``tokenizers`` library from the shipped ``lookalike-text.tokenizer.json``
(MiniLM's WordPiece vocabulary pruned to the tokens fashion text uses; unknown words fall back to pieces or
``[UNK]``) and embedded by one ONNX graph (transformer, mean pooling, projection, L2 norm). No torch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ModelLoadError

__all__ = ["DEFAULT_TEXT_MODEL", "TextEncoder", "default_text_encoder"]

_MODELS = Path(__file__).resolve().parent.parent / "models"
#: The shipped text tower (its tokenizer and config lie beside it: ``lookalike-text.tokenizer.json``,
#: ``lookalike-text.config.json``).
DEFAULT_TEXT_MODEL = _MODELS / "lookalike-text.onnx"


class TextEncoder:
    """``encode(texts)`` -> (n, dim) float32, L2-normalised; the ONNX session is opened on first use.

    ``tokenizer`` and ``config`` default to the files named like ``model`` with the suffixes
    ``.tokenizer.json`` and ``.config.json``. ``threads``: onnxruntime intra-op threads (2).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_TEXT_MODEL,
        tokenizer: str | os.PathLike[str] | None = None,
        config: str | os.PathLike[str] | None = None,
        threads: int = 2,
    ) -> None:
        self.path = Path(model)
        stem = self.path.with_suffix("")
        self.tokenizer_path = Path(tokenizer) if tokenizer is not None else Path(f"{stem}.tokenizer.json")
        config_path = Path(config) if config is not None else Path(f"{stem}.config.json")
        for p in (self.path, self.tokenizer_path, config_path):
            if not p.is_file():
                raise ModelLoadError(f"text model file not found: {p}")
        try:
            self.config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {config_path}: {exc}") from exc
        self.dim = int(self.config.get("dim", 256))
        self.image_model = str(self.config.get("image_model", ""))
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            try:
                tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            except Exception as exc:  # tokenizers raises its own untyped errors
                raise ModelLoadError(f"cannot load tokenizer {self.tokenizer_path}: {exc}") from exc
            tokenizer.no_padding()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelLoadError(f"cannot load ONNX model {self.path}: {exc}") from exc
            self._tokenizer, self._session = tokenizer, session

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64, padded to the longest text."""
        self._load()
        encs = self._tokenizer.encode_batch([" ".join(str(t).split()) for t in texts])
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Vectors of ``texts`` (n, dim), float32, L2-normalised (an empty text gives a valid vector).

        Each text runs alone: the graph is dynamically quantised (its MatMuls quantise their activations with
        one scale per input tensor), so in a batch a text's vector would depend on the other texts and on
        their padding (0.03 apart). Alone, a text has one vector whatever else is encoded with it, and no
        padding is computed: 200 phrases took 2.9 ms each one by one, 3.3 ms each in batches of 64, on two idle
        cores (1.3-1.6x the batched time on cores busy with other work). ``batch_size`` is accepted for
        compatibility and ignored."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts")
        del batch_size
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            ids, mask = self.tokenize([text])
            vec = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[i] = vec[0] / max(float(np.linalg.norm(vec[0])), 1e-12)
        return out

    def describe(self) -> dict[str, Any]:
        """Name, files and settings (for logs and reports)."""
        return {"path": str(self.path), "tokenizer": str(self.tokenizer_path), "threads": self.threads, **self.config}


@lru_cache(maxsize=1)
def default_text_encoder() -> TextEncoder:
    """The shipped text tower (one shared instance; its session opens on first ``encode``)."""
    return TextEncoder(DEFAULT_TEXT_MODEL)
