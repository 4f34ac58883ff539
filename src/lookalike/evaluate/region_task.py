"""EVALUATION.md task 7, region and garments: collages, synthetic outfits and shoppers' photos.

* **Collages**: two test-split catalogue pictures of different kinds side by side on a white canvas (a JPEG, as a
  screenshot is); the region of each half should find its product first (its own picture, or one byte-identical
  to it), and ``garments()`` should find a garment in each half (a box whose centre is in the half; strictly: a box
  at IoU >= 0.5 with the product's own box).
* **Synthetic outfits** of test-split products (3-4 garments each; drawn as the detector's training outfits are,
  from the test split and another seed, so held out of its training): box recall at IoU 0.5, and each garment's
  box searched: type mP@10 (same ``articleType`` as the garment's product) from its detected box (a garment not
  found scores 0) and from its true box.
* **Photos** (task 3's, contributors held out): the first garment's box against the whole photo, type+colour
  mP@10 (photos labelled ``multi``: type only) and fine-type mP@10.

Searches go through a :class:`~lookalike.catalog.Catalog` of the 9,583 products (vectors from the evaluation
cache), so they rank as a shopper's search does (mirror view, colour, collapse).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.colour.families import family_of
from lookalike.errors import InvalidQueryError
from lookalike.evaluate.colour_task import photo_colour_task
from lookalike.evaluate.datasets import catalog_rows, resolve_datasets_root
from lookalike.garment.detector import box_iou
from lookalike.garment.kinds import CLASSES, kind_of
from lookalike.product import Hit

__all__ = ["collage_scores", "gallery_catalogue", "outfit_scores", "photo_scores", "run_region_eval"]

Say = Callable[[str], None]
MULTI = "multi"


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _first_is(hits: Sequence[Hit], pid: str, twins: dict[str, set[str]]) -> bool:
    """The first hit is ``pid``, or a product with the very same picture (shown once, listing the others)."""
    if not hits:
        return False
    first = hits[0]
    same = twins.get(pid, set())
    return first.id == pid or first.id in same or pid in first.duplicates


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def collage_scores(cat: Any, rows: Sequence[dict[str, str]], root: Path, n: int = 200, seed: int = 0) -> dict[str, Any]:
    """Region search and ``garments()`` on ``n`` two-picture collages of test-split products of different kinds, as a
    PNG (the pictures as they are) and as a JPEG (quality 90, as a screenshot is shared); region search also without
    the colour stage (similarity alone), to tell the region's part from the ranking's."""
    from lookalike.garment.mask import catalogue_mask

    test = [r for r in rows if int(r["id"]) % 5 == 0 and kind_of(r["articleType"]) is not None]
    rng = np.random.default_rng(seed)
    shas: dict[str, list[str]] = {}
    for r in rows:
        shas.setdefault(r["_sha"], []).append(r["id"])
    twins = {pid: set(ids) - {pid} for ids in shas.values() for pid in ids}
    first = {"png": 0, "jpeg": 0, "jpeg, no colour stage": 0}
    found = {"png": [0, 0], "jpeg": [0, 0]}  # a garment in the half (centre), the half's product boxed (IoU 0.5)
    pairs = 0
    detect_ms = []
    while pairs < n:
        a, b = (test[int(i)] for i in rng.choice(len(test), 2, replace=False))
        if kind_of(a["articleType"]) == kind_of(b["articleType"]):
            continue
        pairs += 1
        imgs = [Image.open(root / r["image"]).convert("RGB") for r in (a, b)]
        canvas = Image.new("RGB", (448, 224), "white")
        truth = []
        for i, img in enumerate(imgs):
            canvas.paste(img.resize((224, 224)), (224 * i, 0))
            bbox = Image.fromarray(catalogue_mask(img.resize((224, 224))).astype(np.uint8) * 255).getbbox() or (
                0, 0, 224, 224)  # fmt: skip
            truth.append(((bbox[0] + 224 * i) / 448, bbox[1] / 224, (bbox[2] + 224 * i) / 448, bbox[3] / 224))
        encoded = {"png": _png(canvas), "jpeg": _jpeg(canvas)}
        for i, r in enumerate((a, b)):
            half = (0.5 * i, 0.0, 0.5 * (i + 1), 1.0)
            first["png"] += _first_is(cat.search(encoded["png"], region=half, k=1), r["id"], twins)
            first["jpeg"] += _first_is(cat.search(encoded["jpeg"], region=half, k=1), r["id"], twins)
            plain = cat.search(encoded["jpeg"], region=half, k=1, colour_rank=False)
            first["jpeg, no colour stage"] += _first_is(plain, r["id"], twins)
        for name, data in encoded.items():
            t0 = time.perf_counter()
            boxes = np.array([g.box for g in cat.garments(data)]).reshape(-1, 4)
            detect_ms.append((time.perf_counter() - t0) * 1000)
            centres = (boxes[:, 0] + boxes[:, 2]) / 2
            iou = box_iou(np.array(truth), boxes)
            for i in range(2):
                found[name][0] += bool(((centres >= 0.5 * i) & (centres < 0.5 * (i + 1))).any())
                found[name][1] += bool(len(boxes) and iou[i].max() >= 0.5)
    halves = 2 * pairs
    out: dict[str, Any] = {"collages": pairs}
    for name, count in first.items():
        out[f"region finds its product first ({name})"] = count / halves
    for name, (loose, strict) in found.items():
        out[f"garments: a garment in each half ({name}; box centre in the half)"] = loose / halves
        out[f"garments: the half's product boxed ({name}; IoU >= 0.5)"] = strict / halves
    out["garments ms p50 (decode + detect, during the run)"] = float(np.median(detect_ms))
    return out


def outfit_scores(
    cat: Any,
    rows: Sequence[dict[str, str]],
    root: Path,
    n: int = 150,
    seed: int = 20_000,
    k: int = 10,
    size: int = 384,
) -> dict[str, Any]:
    """Box recall at IoU 0.5 and type mP@10 from each garment's box on ``n`` outfits of 3-4 test-split garments."""
    from lookalike.training.outfits import outfit
    from lookalike.training.segment import catalogue_cutouts

    test = [r for r in rows if int(r["id"]) % 5 == 0 and kind_of(r["articleType"]) is not None]
    types = {int(r["id"]): r["articleType"] for r in test}
    pools: dict[int, list[Any]] = {}
    owner: dict[int, int] = {}
    for pid, cut in catalogue_cutouts([(int(r["id"]), root / r["image"]) for r in test]):
        pools.setdefault(CLASSES.index(kind_of(types[pid])), []).append(cut)  # type: ignore[arg-type]
        owner[id(cut)] = pid
    rng = np.random.default_rng(seed)
    garments = found = right_kind = 0
    small = [0]
    p_detected: list[float] = []
    p_true: list[float] = []
    drawn = 0
    while drawn < n:
        o = outfit(pools, rng, size, None, layout="outfit", degrade=False)
        if not 3 <= len(o.boxes) <= 4:
            continue
        drawn += 1
        data = _jpeg(o.image)
        pred = cat.garments(data)
        boxes = np.array([g.box for g in pred]).reshape(-1, 4)
        iou = box_iou(o.boxes, boxes) if len(boxes) else np.zeros((len(o.boxes), 0))
        for t, cut in enumerate(o.sources):
            want = types[owner[id(cut)]]
            garments += 1

            def precision(box: Sequence[float], want: str = want, data: bytes = data) -> float:
                try:
                    hits = cat.search(data, region=tuple(float(v) for v in box), k=k)
                except InvalidQueryError:  # under 32 pixels a side: not searchable, scores 0
                    small[0] += 1
                    return 0.0
                return sum(h.product.article_type == want for h in hits) / k

            p_true.append(precision(o.boxes[t]))
            j = int(iou[t].argmax()) if iou.shape[1] else -1
            if j >= 0 and iou[t, j] >= 0.5:
                found += 1
                name = CLASSES[int(o.classes[t])]
                right_kind += pred[j].kind == (None if name == "other" else name)
                p_detected.append(precision(pred[j].box))
            else:
                p_detected.append(0.0)
    return {
        "outfits": drawn,
        "garments": garments,
        "box recall (IoU >= 0.5)": found / max(1, garments),
        "kind right (of the boxes found)": right_kind / max(1, found),
        f"type mP@{k} from the detected box (not found: 0)": float(np.mean(p_detected)),
        f"type mP@{k} from the true box": float(np.mean(p_true)),
        "boxes under 32 pixels a side (not searched, scored 0)": small[0],
        "picture size": size,
    }


def photo_scores(cat: Any, root: Path, k: int = 10, heldout_seed: int | None = 0) -> dict[str, Any]:
    """Task 3's photos: the whole photo against the first garment's box (the whole photo when none is found)."""
    task = photo_colour_task(root, heldout_seed=heldout_seed)
    cat.auto_region = False  # "whole" is the whole photo, whatever the default
    scores: dict[str, list[float]] = {key: [] for key in ("whole tc", "box tc", "whole type", "box type")}
    with_garment = 0
    for path, types, fam in zip(task.queries.paths, task.query_types, task.query_families, strict=True):
        data = Path(path).read_bytes()
        found = cat.garments(data)
        region = found[0].box if found else None
        with_garment += bool(found)
        for name, reg in (("whole", None), ("box", region)):
            hits = cat.search(data, region=reg, k=k)
            kind = [h.product.article_type in types for h in hits]
            scores[f"{name} type"].append(sum(kind) / k)
            if fam != MULTI:
                same = [ok and family_of(h.product.colour or "") == fam for ok, h in zip(kind, hits, strict=True)]
                scores[f"{name} tc"].append(sum(same) / k)
    return {
        "photos": len(task.queries.paths),
        "with a garment found": with_garment,
        f"whole photo: type+colour mP@{k}": float(np.mean(scores["whole tc"])),
        f"first garment's box: type+colour mP@{k}": float(np.mean(scores["box tc"])),
        f"whole photo: fine type mP@{k}": float(np.mean(scores["whole type"])),
        f"first garment's box: fine type mP@{k}": float(np.mean(scores["box type"])),
    }


def gallery_catalogue(
    root: Path, cache_root: str | os.PathLike[str] | None, folder: Path, say: Say | None = None
) -> tuple[Any, list[dict[str, str]]]:
    """A catalogue of every product in ``folder`` (vectors from the evaluation cache, embedded there when missing)
    and the products' rows (each with its picture's SHA-256 as ``_sha``)."""
    from lookalike.evaluate.cache import EmbeddingCache
    from lookalike.evaluate.feedback_task import build_catalogue
    from lookalike.extractors import create_extractor

    images, rows = catalog_rows(root)
    if say is not None:
        say(f"embedding {len(rows):,} catalogue pictures (cached after the first run)")
    vecs, _ = EmbeddingCache(cache_root).embed(create_extractor("lookalike-fashion"), images)
    for r, p in zip(rows, images.paths, strict=True):
        r["_sha"] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return build_catalogue(folder, rows, list(images.paths), vecs), rows


def run_region_eval(
    root: str | os.PathLike[str] | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    collages: int = 200,
    outfits: int = 150,
    parts: Sequence[str] = ("collages", "outfits", "photos"),
    progress: Say | None = None,
) -> dict[str, Any]:
    """Task 7's parts on a catalogue of every product (vectors from the evaluation cache at ``cache_root``)."""
    say = progress or (lambda _msg: None)
    base = resolve_datasets_root(root)
    out: dict[str, Any] = {}
    pictures = base / "fashion-product-images-224"
    with tempfile.TemporaryDirectory(prefix="lookalike-region-eval-") as tmp:
        cat, rows = gallery_catalogue(base, cache_root, Path(tmp) / "all", say)
        with cat:
            if "collages" in parts:
                say(f"{collages} collages")
                out["collages"] = collage_scores(cat, rows, pictures, collages)
            if "outfits" in parts:
                say(f"{outfits} synthetic outfits")
                out["outfits"] = outfit_scores(cat, rows, pictures, outfits)
            if "photos" in parts:
                say("task 3's photos, held-out contributors and all")
                out["photos held out"] = photo_scores(cat, base, heldout_seed=0)
                out["photos all 310"] = photo_scores(cat, base, heldout_seed=None)
    return out
