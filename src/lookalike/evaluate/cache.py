"""Embedding evaluation images, and caching the embeddings per extractor and per image.

Decoding and preprocessing run in a thread pool a couple of batches ahead of the model. Embeddings are
cached per extractor (name, settings, weights file, and a fingerprint of its output on fixed probe
pictures) and per image (path, size, mtime), in ``.npy`` files named by the dataset and a hash of the
file list; a later run reuses every image it finds in any cached file of the same extractor, so the
catalogue is embedded once for all tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lookalike.evaluate.datasets import ImageSet
from lookalike.extractors.base import Extractor
from lookalike.imaging.decode import load_image

__all__ = ["EmbeddingCache", "embed_paths", "extractor_cache_key"]

ProgressFn = Callable[[int, int], None]


# --- embedding --------------------------------------------------------------------------------------
def embed_paths(
    extractor: Extractor,
    paths: Sequence[Path],
    batch_size: int | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Embed image files: decode + preprocess in ``workers`` threads, the model on batches in order.
    ``flip``: embed the mirror images of the pictures instead.

    Raises the decoder's :class:`~lookalike.errors.ImageError` for an unreadable file: an evaluation
    set must be complete.
    """
    bs = batch_size or extractor.batch_size
    n_workers = workers or min(8, (os.cpu_count() or 2) + 2)
    cfg = extractor.preprocess_cfg
    draft = cfg.size if cfg is not None else None

    def prepare(path: Path) -> np.ndarray:
        img = load_image(path, draft_size=draft)
        return extractor.preprocess(ImageOps.mirror(img) if flip else img)

    out = np.zeros((len(paths), extractor.dim), dtype=np.float32)
    pending: deque[Future[np.ndarray]] = deque()
    next_index, done = 0, 0
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="lookalike-eval") as pool:
        while done < len(paths):
            while next_index < len(paths) and len(pending) < 2 * bs:
                pending.append(pool.submit(prepare, paths[next_index]))
                next_index += 1
            take = min(bs, len(pending))
            batch = [pending.popleft().result() for _ in range(take)]
            out[done : done + take] = extractor.embed_preprocessed(np.stack(batch))
            done += take
            if progress is not None:
                progress(done, len(paths))
    return out


def _probe_images() -> list[Image.Image]:
    """Two fixed synthetic pictures, neither square, textured so that any change in resizing, cropping,
    normalisation or the model moves their embeddings."""
    rng = np.random.default_rng(20240601)
    out = []
    for h, w in ((193, 257), (300, 120)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // w, yy * 255 // h, (3 * xx + 5 * yy) % 256], axis=-1)
        noise = rng.integers(-40, 41, size=(h, w, 3))
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return out


def extractor_cache_key(extractor: Extractor) -> str:
    """A key that changes when the extractor's name, settings, weights file or behaviour change.

    Behaviour is fingerprinted by embedding two fixed probe pictures with the code actually loaded, so
    an edited preprocessing or model invalidates the cache even when the settings look the same.
    Decoding (:func:`~lookalike.imaging.decode.load_image`) is not part of the key.
    """
    desc = extractor.describe()
    path = desc.get("path")
    if path and Path(path).is_file():
        st = Path(path).stat()
        desc["weights"] = [st.st_size, st.st_mtime_ns]
    probe = extractor.embed_preprocessed(np.stack([extractor.preprocess(img) for img in _probe_images()]))
    desc["probe"] = hashlib.sha256((np.round(probe.astype(np.float64), 4) + 0.0).tobytes()).hexdigest()
    digest = hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", extractor.name)[-48:]
    return f"{safe}-{digest}"


def _fingerprints(paths: Iterable[Path]) -> list[str]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            out.append(f"{p}|missing")
    return out


@dataclass
class _Entry:
    rows: dict[str, int]
    array: np.ndarray


class EmbeddingCache:
    """Embeddings per (extractor key, image fingerprint): in memory, and on disk when ``root`` is set."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self._memory: dict[str, list[_Entry]] = {}
        self._disk: dict[Path, _Entry] = {}
        self._keys: dict[int, tuple[Extractor, str]] = {}

    def key(self, extractor: Extractor) -> str:
        """:func:`extractor_cache_key`, computed once per extractor object."""
        known = self._keys.get(id(extractor))
        if known is None or known[0] is not extractor:
            known = (extractor, extractor_cache_key(extractor))
            self._keys[id(extractor)] = known
        return known[1]

    def _disk_entries(self, key: str) -> list[_Entry]:
        if self.root is None or not (self.root / key).is_dir():
            return []
        found = []
        for meta in sorted((self.root / key).glob("*.json")):
            npy = meta.with_suffix(".npy")
            if meta not in self._disk:
                try:
                    fps = json.loads(meta.read_text())["images"]
                    array = np.load(npy, mmap_mode="r")
                except (OSError, ValueError, KeyError):
                    continue
                if array.shape[0] != len(fps):
                    continue
                self._disk[meta] = _Entry({fp: i for i, fp in enumerate(fps)}, array)
            found.append(self._disk[meta])
        return found

    def lookup(self, key: str, fingerprints: Sequence[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, found mask): rows for the images any cached entry of ``key`` holds."""
        out = np.zeros((len(fingerprints), dim), dtype=np.float32)
        found = np.zeros(len(fingerprints), dtype=bool)
        for entry in [*self._memory.get(key, []), *self._disk_entries(key)]:
            if found.all():
                break
            if entry.array.shape[1] != dim:
                continue
            want = [(i, entry.rows.get(fp)) for i, fp in enumerate(fingerprints) if not found[i]]
            hits = [(i, r) for i, r in want if r is not None]
            if hits:
                idx = np.fromiter((i for i, _ in hits), dtype=np.int64)
                rows = np.fromiter((r for _, r in hits), dtype=np.int64)
                order = np.argsort(rows)  # read a memory-mapped file front to back
                out[idx[order]] = entry.array[rows[order]]
                found[idx] = True
        return out, found

    def store(self, key: str, dataset: str, fingerprints: Sequence[str], array: np.ndarray) -> Path | None:
        """Keep ``array`` for these images (atomically written to disk when the cache has a root)."""
        self._memory.setdefault(key, []).append(_Entry({fp: i for i, fp in enumerate(fingerprints)}, array))
        if self.root is None:
            return None
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()[:16]
        stem = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', dataset)}-{len(fingerprints)}-{digest}"
        tmp_npy, tmp_json = folder / f".{stem}.npy.tmp", folder / f".{stem}.json.tmp"
        with open(tmp_npy, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array, dtype=np.float32))
        tmp_json.write_text(json.dumps({"dataset": dataset, "images": list(fingerprints)}))
        os.replace(tmp_npy, folder / f"{stem}.npy")  # the .json last: a reader only trusts complete pairs
        os.replace(tmp_json, folder / f"{stem}.json")
        return folder / f"{stem}.npy"

    def embed(
        self,
        extractor: Extractor,
        images: ImageSet,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: ProgressFn | None = None,
        flip: bool = False,
    ) -> tuple[np.ndarray, int]:
        """Embeddings of ``images``, computing only the ones not cached; returns (array, n computed).
        ``flip``: of their mirror images (cached apart)."""
        key = self.key(extractor) + ("-mirror" if flip else "")
        fps = _fingerprints(images.paths)
        array, found = self.lookup(key, fps, extractor.dim)
        missing = np.flatnonzero(~found)
        if missing.size:
            paths = [images.paths[i] for i in missing]
            array[missing] = embed_paths(extractor, paths, batch_size, workers, progress, flip)
            self.store(key, images.name, fps, array)
        elif progress is not None:
            progress(len(fps), len(fps))
        return array, int(missing.size)
