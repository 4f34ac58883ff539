"""The embedding model with a second output: the kinds of product a picture shows.

``models/lookalike-kind.onnx`` is the shipped INT8 ``lookalike-fashion`` graph, unchanged, with a branch grafted on
its trunk: a class-balanced fine-tuned copy of the model's last block and head convolution reads the trunk's
7 x 7 maps (block 14's output) and gives a softmax over the kind head's classes (``lookalike train-kind --branch``,
docs/model-card-lookalike-kind.md). One run of the graph gives a query's vectors, equal to the embedding model's,
and its kinds; the branch adds about 1.4 ms to the two views of a search on two cores.

A :class:`KindBranch` is an :class:`~lookalike.extractors.onnx.OnnxExtractor` of that graph (its first output is the
embedding) with :meth:`KindBranch.read`. Only a catalogue whose model file is the very graph the branch was grafted
on uses it (its SHA-256 is in the kind head's file): :func:`lookalike.catalog.kinds.kind_branch_for` checks.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from lookalike.errors import ModelLoadError
from lookalike.extractors.base import Extractor, PreprocessCfg, l2_normalize
from lookalike.extractors.identity import file_sha256, weights_file
from lookalike.extractors.onnx import OnnxExtractor
from lookalike.kind.model import DEFAULT_KIND_MODEL, KindModel

__all__ = ["KIND_OUTPUT", "KindBranch", "kind_branch_of", "load_kind_branch"]

#: The name of the graph's kind output.
KIND_OUTPUT = "kind"


class KindBranch(OnnxExtractor):
    """An embedding graph whose output ``kind`` is a (n, classes) probability for each picture of the batch."""

    def __init__(
        self, name: str, path: str | os.PathLike[str], preprocess_cfg: PreprocessCfg, classes: int, **kw: object
    ) -> None:
        super().__init__(name, path, preprocess_cfg, **kw)  # type: ignore[arg-type]
        names = [o.name for o in self._session.get_outputs()]
        if KIND_OUTPUT not in names:
            raise ModelLoadError(f"{self.path} has no {KIND_OUTPUT!r} output (outputs: {', '.join(names)})")
        probe = self.read(np.zeros((1, *self._probe_shape()), np.float32))[1]
        if probe.shape != (1, classes):
            raise ModelLoadError(f"{self.path} gives kinds of shape {list(probe.shape)}, not [1, {classes}]")

    def _probe_shape(self) -> tuple[int, int, int]:
        s = self.preprocess_cfg.size
        return (3, s, s) if self.preprocess_cfg.layout == "NCHW" else (s, s, 3)

    def read(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised vectors, kind probabilities) of a stacked batch of :meth:`preprocess` outputs."""
        feed = {self._input: batch.astype(np.float32, copy=False)}
        vectors, kinds = self._session.run([self._output, KIND_OUTPUT], feed)
        return l2_normalize(np.asarray(vectors, dtype=np.float32)), np.asarray(kinds, dtype=np.float32)


@lru_cache(maxsize=2)
def load_kind_branch(path: Path, name: str, preprocess_cfg: PreprocessCfg, classes: int) -> KindBranch:
    """The branch graph at ``path`` (loaded once per process), read with ``name``'s preprocessing."""
    return KindBranch(name, path, preprocess_cfg, classes)


def kind_branch_of(extractor: Extractor, model: KindModel | None) -> KindBranch | None:
    """``model``'s kind branch when ``extractor`` runs the very model file the branch was grafted on (same SHA-256),
    else None (no branch, another model or variant: the head alone reads the vectors)."""
    spec = model.branch if model is not None else None
    if model is None or spec is None:
        return None
    file = weights_file(extractor)
    if file is None or file_sha256(file) != spec.embedding_sha256 or extractor.preprocess_cfg is None:
        return None
    path = spec.path(DEFAULT_KIND_MODEL.parent)
    if not path.is_file():
        return None
    return load_kind_branch(path, extractor.name, extractor.preprocess_cfg, len(model.classes))
