"""The kind head: a query picture's embedding → a distribution over kinds of product (article types).

A small softmax head (linear, or one hidden ReLU layer) over the vectors of the embedding model it was trained for;
its weights, classes and settings live in one JSON file (shipped: ``models/lookalike-kind.json``, made by
``lookalike train-kind``), and it runs in numpy, no runtime needed. A query's views (the picture and its mirror
image, already embedded for the search) are read alike and their distributions averaged, so the head costs a
matrix product per search.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ModelLoadError

__all__ = ["DEFAULT_KIND_MODEL", "KindBranchSpec", "KindModel", "default_kind_model"]

DEFAULT_KIND_MODEL = Path(__file__).resolve().parent.parent / "models" / "lookalike-kind.json"


@dataclass(frozen=True)
class KindBranchSpec:
    """The kind branch that goes with a head: an embedding graph with a ``kind`` output (``file``, next to the head's
    JSON), grafted on the embedding model file whose SHA-256 is ``embedding_sha256``; a query read by both has
    the normalised geometric mean ``P_head ** (1 - weight) * P_branch ** weight``."""

    file: str
    embedding_sha256: str
    weight: float = 0.5

    def path(self, folder: Path) -> Path:
        return folder / self.file


@dataclass
class KindModel:
    """``probabilities(x)`` = softmax(scale × layers(x)) over :attr:`classes`; ``layers`` is ``x @ W + b`` or,
    with a hidden layer, ``relu(x @ W1 + b1) @ W + b``. ``embedding`` names the embedding model (and ``dim`` its
    size) whose vectors the head reads: another model's vectors mean nothing to it."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (hidden or dim, n classes)
    bias: np.ndarray  # (n classes,)
    embedding: str
    dim: int
    hidden_weights: np.ndarray | None = None  # (dim, hidden)
    hidden_bias: np.ndarray | None = None  # (hidden,)
    scale: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)
    branch: KindBranchSpec | None = None

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32)
        n = len(self.classes)
        inner = self.dim
        if self.hidden_weights is not None:
            self.hidden_weights = np.asarray(self.hidden_weights, dtype=np.float32)
            self.hidden_bias = np.asarray(self.hidden_bias, dtype=np.float32)
            if self.hidden_weights.shape[0] != self.dim or self.hidden_bias.shape != (self.hidden_weights.shape[1],):
                raise ModelLoadError(
                    f"kind head hidden layer {self.hidden_weights.shape} / {self.hidden_bias.shape} does not fit "
                    f"{self.dim}-d vectors"
                )
            inner = self.hidden_weights.shape[1]
        if self.weights.shape != (inner, n) or self.bias.shape != (n,) or n == 0 or len(set(self.classes)) != n:
            raise ModelLoadError(
                f"kind head shapes {self.weights.shape} / {self.bias.shape} do not fit {inner} inputs x {n} distinct "
                "classes"
            )

    def fits(self, model_name: str, dim: int) -> bool:
        """Whether the head reads the vectors of embedding model ``model_name`` (``dim``-d)."""
        return model_name == self.embedding and dim == self.dim

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities of (n, dim) vectors (or (classes,) of one)."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise ValueError(f"the kind head reads {self.dim}-d vectors, got {x.shape[-1]}-d")
        if self.hidden_weights is not None and self.hidden_bias is not None:
            x = np.maximum(x @ self.hidden_weights + self.hidden_bias, 0.0)
        logits = (x @ self.weights + self.bias) * np.float32(self.scale)
        logits = logits - logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)

    def predict(self, views: np.ndarray, branch: np.ndarray | None = None) -> np.ndarray:
        """The distribution (classes,) of a query seen as ``views`` ((n, dim): a picture and its mirror image):
        the mean of the views' distributions; with ``branch`` (the kind branch's (n, classes) probabilities of the
        same views) their normalised geometric mean with the branch's mean, weighted by the spec's ``weight``."""
        v = np.asarray(views, dtype=np.float32)
        head = self.probabilities(v.reshape(-1, self.dim)).mean(axis=0)
        if branch is None or self.branch is None:
            return head
        b = np.asarray(branch, dtype=np.float32).reshape(-1, len(self.classes)).mean(axis=0)
        w = float(self.branch.weight)
        tiny = np.float32(1e-8)
        log = (1.0 - w) * np.log(np.maximum(head, tiny)) + w * np.log(np.maximum(b, tiny))
        p = np.exp(log - log.max())
        return (p / p.sum()).astype(np.float32)

    def save(self, path: str | os.PathLike[str]) -> None:
        doc: dict[str, Any] = {
            "format": "lookalike-kind/1",
            "embedding": self.embedding,
            "dim": self.dim,
            "classes": list(self.classes),
            "scale": self.scale,
            "weights": np.round(self.weights, 6).tolist(),
            "bias": np.round(self.bias, 6).tolist(),
            "info": self.info,
        }
        if self.branch is not None:
            doc["branch"] = {
                "file": self.branch.file,
                "embedding_sha256": self.branch.embedding_sha256,
                "weight": self.branch.weight,
            }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            doc["hidden_weights"] = np.round(self.hidden_weights, 6).tolist()
            doc["hidden_bias"] = np.round(self.hidden_bias, 6).tolist()
        Path(path).write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KindModel:
        try:
            doc = json.loads(Path(path).read_text())
            if doc.get("format") != "lookalike-kind/1":
                raise ValueError(f"not a kind head (format {doc.get('format')!r})")
            return cls(
                classes=tuple(doc["classes"]),
                weights=np.asarray(doc["weights"], dtype=np.float32),
                bias=np.asarray(doc["bias"], dtype=np.float32),
                embedding=str(doc["embedding"]),
                dim=int(doc["dim"]),
                hidden_weights=np.asarray(doc["hidden_weights"], dtype=np.float32) if "hidden_weights" in doc else None,
                hidden_bias=np.asarray(doc["hidden_bias"], dtype=np.float32) if "hidden_bias" in doc else None,
                scale=float(doc.get("scale", 1.0)),
                info=doc.get("info", {}),
                branch=KindBranchSpec(**doc["branch"]) if doc.get("branch") else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelLoadError(f"cannot read the kind head {path}: {exc}") from exc


@lru_cache(maxsize=1)
def default_kind_model() -> KindModel | None:
    """The shipped kind head (loaded once), or None when the package has none."""
    if not DEFAULT_KIND_MODEL.is_file():
        return None
    return KindModel.load(DEFAULT_KIND_MODEL)
