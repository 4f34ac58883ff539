"""The ingest's first stage, run in worker processes or threads: read, hash, decode and resize pictures.

:class:`Preparer` turns ``(record, stored state)`` pairs into :class:`Prepared` items: a product to
skip, one whose metadata alone changed, a failure, or a picture ready for the model. On the fast path
(:func:`fast_cfg`) workers return resized uint8 pixels and the parent normalises the whole batch at
once (:func:`model_input`, :func:`normalise`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.colour.detect import default_colour_detector
from lookalike.colour.families import family_index
from lookalike.errors import CatalogError, LookalikeError
from lookalike.extractors import Extractor, PreprocessCfg
from lookalike.imaging import (
    DecodeLimits,
    FetchSettings,
    fetch_image_bytes,
    image_format,
    open_image_bytes,
    read_image_bytes,
)
from lookalike.sources import IngestRecord

__all__ = [
    "Prepared",
    "PreparedPicture",
    "Preparer",
    "fast_cfg",
    "model_input",
    "normalise",
    "picture_colour",
    "upload_name",
    "worker_init",
]


def upload_name(sha: str) -> str:
    """The name a picture sent as bytes is listed under in :attr:`Product.images` (it has no path or URL)."""
    return f"upload:{sha[:16]}"


def picture_colour(image: Image.Image) -> str:
    """The colour family of the garment in a catalogue picture (the query's colour detector, so a picture
    and its own product agree)."""
    return default_colour_detector().detect(image).family


@dataclass
class PreparedPicture:
    """One picture ready for the model: ``array`` holds the model input, or uint8 pixels (HWC) for the
    batched fast path; it keeps its bytes, their SHA-256 and format
    (:class:`~lookalike.catalog.pictures.NewPicture`) and where it came from (``source``)."""

    source: str | None
    array: np.ndarray | None = None
    sha: str | None = None
    data: bytes | None = None
    fmt: str | None = None
    image: Image.Image | None = None


@dataclass
class Prepared:
    """One record after preparation. ``action``: ``"embed"`` (``pictures`` are ready for the model, in the
    product's order, each distinct picture once), ``"meta"`` (only the metadata changed), ``"skip"`` or
    ``"fail"`` (``error`` says why). ``failed``: the pictures that could not be read, ``(source, reason)``
    (the product is embedded with the others)."""

    record: IngestRecord
    action: str  # "embed", "meta", "skip", "fail"
    pictures: list[PreparedPicture] = field(default_factory=list)
    error: str | None = None
    colour: str | None = None  # the main picture's colour family, for a product without a known colour
    failed: list[tuple[str, str]] = field(default_factory=list)


def worker_init(parent: int) -> None:
    """In each decode worker: die with the ingest that forked it (``PR_SET_PDEATHSIG``: a SIGKILLed
    ingest leaves no orphans holding its pipes), and leave Ctrl-C to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def fast_cfg(extractor: Extractor) -> PreprocessCfg | None:
    """The extractor's preprocessing when it is exactly :meth:`PreprocessCfg.to_array` (so workers can
    resize and the batch can be normalised at once), else None."""
    cfg = extractor.preprocess_cfg
    if cfg is None or type(cfg) is not PreprocessCfg or type(extractor).preprocess is not Extractor.preprocess:
        return None
    return cfg


def normalise(cfg: PreprocessCfg, batch: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> the model's float32 input, bit-identical to :meth:`PreprocessCfg.to_array`
    (the same float32 subtraction and division): the subtraction reads the uint8 pixels through a
    transposed view and writes float32 straight into the output layout, the division runs in place
    (0.16 ms per 224-px picture; a per-channel table lookup took 0.33, NumPy casting its uint8 indices
    to int64 first)."""
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    n, h, w, _ = batch.shape
    if cfg.layout == "NCHW":
        out = np.empty((n, 3, h, w), dtype=np.float32)
        src, mean, std = batch.transpose(0, 3, 1, 2), mean[:, None, None], std[:, None, None]
    else:
        out = np.empty((n, h, w, 3), dtype=np.float32)
        src = batch
    np.subtract(src, mean, out=out, dtype=np.float32, casting="unsafe")
    np.divide(out, std, out=out)
    return out


def model_input(extractor: Extractor, arrays: list[np.ndarray]) -> np.ndarray:
    """Stack a batch; uint8 pixels from the fast path are normalised here (see :func:`normalise`)."""
    batch = np.stack(arrays)
    cfg = fast_cfg(extractor)
    if batch.dtype != np.uint8 or cfg is None:
        return batch
    return normalise(cfg, batch)


@dataclass(frozen=True)
class Preparer:
    """Reads, hashes, decodes and preprocesses pictures; runs in worker processes or threads.

    With ``fast`` the result is the resized uint8 picture (the parent normalises the batch); otherwise
    ``extractor.preprocess`` (threads only)."""

    limits: DecodeLimits
    fetch: FetchSettings
    draft: int | None
    fast: PreprocessCfg | None
    extractor: Extractor | None
    colour: bool = True  # predict the picture's colour family for products without a known colour
    pictures_root: str | None = None  # the catalogue's picture folder: a stored picture must still be there

    def __call__(self, items: list[tuple[IngestRecord, Any]], refresh: bool) -> list[Prepared]:
        return [self.prepare(record, state, refresh) for record, state in items]

    def load(self, source: str) -> bytes:
        if source.lower().startswith(("http://", "https://")):
            data, _ = fetch_image_bytes(source, self.fetch)
            return data
        return read_image_bytes(source, self.limits)

    def prepare(self, record: IngestRecord, state: Any, refresh: bool) -> Prepared:
        """One record: skipped when its pictures and metadata are those stored, else each picture read, hashed,
        decoded and preprocessed (a picture that fails is listed in ``failed``; all failing: ``"fail"``)."""
        if record.error:
            return Prepared(record, "fail", error=record.error)
        sources = record.sources
        if not sources:
            return Prepared(record, "fail", error="no image given for this product")
        meta_same = state is not None and state.meta_hash == record.product.metadata_hash()
        loaded: dict[int, bytes] = {}
        failed: list[tuple[str, str]] = []
        if state is not None and not refresh:
            same = self._unchanged(sources, state.all_pictures(), loaded, failed)
            if same:
                return Prepared(record, "skip" if meta_same else "meta")
        pictures: list[PreparedPicture] = []
        seen: set[str] = set()
        for i, src in enumerate(sources):
            if any(f[0] == src for f in failed):
                continue
            try:
                data = loaded[i] if i in loaded else self.load(src)
                sha = hashlib.sha256(data).hexdigest()
                if sha in seen:  # the same picture twice in one product: stored once
                    continue
                seen.add(sha)
                pictures.append(self._picture(src, data, sha))
            except LookalikeError as exc:
                failed.append((src, str(exc)))
            except Exception as exc:  # a bug in a decoder must not stop the whole ingest
                failed.append((src, f"unexpected {type(exc).__name__}: {exc}"))
        if not pictures:
            return Prepared(record, "fail", error=_failures(failed), failed=failed)
        colour = None
        if self.colour and family_index(record.product.colour) < 0:
            main = pictures[0]
            colour = picture_colour(main.image) if main.image is not None else None
        for pic in pictures:
            pic.image = None  # not sent back to the parent: it re-decodes when it must
        return Prepared(record, "embed", pictures=pictures, colour=colour, failed=failed)

    def _unchanged(
        self, sources: list[str], stored: tuple[Any, ...], loaded: dict[int, bytes], failed: list[tuple[str, str]]
    ) -> bool:
        """Whether ``sources`` are the stored pictures, in order (a URL unchanged is not fetched again; a local
        file is read and hashed, its bytes kept in ``loaded``; one that cannot be read goes to ``failed``)."""
        if len(sources) != len(stored):
            return False
        for i, (src, old) in enumerate(zip(sources, stored, strict=True)):
            if not old.image_sha or not self._present(old.image_file):
                return False
            if src.lower().startswith(("http://", "https://")) and old.image == src:
                continue
            try:
                loaded[i] = self.load(src)
            except LookalikeError as exc:
                failed.append((src, str(exc)))
                return False
            if hashlib.sha256(loaded[i]).hexdigest() != old.image_sha:
                return False
        return True

    def _present(self, image_file: str | None) -> bool:
        """Whether a stored picture file is still in the catalogue's picture folder (True when not known)."""
        if self.pictures_root is None or not image_file:
            return True
        return os.path.isfile(os.path.join(self.pictures_root, image_file))

    def _picture(self, src: str, data: bytes, sha: str) -> PreparedPicture:
        img = open_image_bytes(data, self.limits, draft_size=self.draft, name=Path(src).name)
        fmt = (img.format or "").upper() or image_format(data)[0]
        if self.fast is not None:
            arr = np.asarray(self.fast.resize(img.convert("RGB")), dtype=np.uint8)
        elif self.extractor is not None:
            arr = self.extractor.preprocess(img)
        else:  # pragma: no cover - the ingest never builds this
            raise CatalogError("no preprocessing available in this worker")
        return PreparedPicture(src, arr, sha, data, fmt, img)


def _failures(failed: list[tuple[str, str]]) -> str:
    """One message for a product's failed pictures."""
    if len(failed) == 1:
        return failed[0][1]
    return "; ".join(f"{src}: {why}" for src, why in failed)
