"""The product's mask in a catalogue shot on a white studio background, with numpy and Pillow only.

The background is what the border reaches through near-white, flat pixels: a flood fill from every
border pixel with a colour tolerance, stopped by edges (a white garment's grey outline or shadow).
Everything the fill cannot reach is the product, except enclosed patches of pure studio white (the gap
between an arm and the body, inside a bag's handle); a small opening then removes specks of JPEG noise.
White on white stays imperfect: a garment with no visible outline where it touches the border is
partly lost, and a white garment's own pure-white patches (5 x 5 or more, enclosed) are dropped.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["catalogue_mask", "dilate", "erode", "fill_from_border"]


def _run_labels(free: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels (1..n, 0 where not free) of the horizontal runs of ``free`` pixels, unique over the image."""
    h, w = free.shape
    padded = np.zeros((h, w + 1), dtype=bool)
    padded[:, :w] = free
    flat = padded.ravel()
    starts = flat & ~np.concatenate(([False], flat[:-1]))
    labels = np.cumsum(starts) * flat
    return labels.reshape(h, w + 1)[:, :w], int(starts.sum())


def _spread_runs(reach: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Every pixel of a run that holds a reached pixel becomes reached."""
    hit = np.zeros(n + 1, dtype=bool)
    hit[labels[reach]] = True
    hit[0] = False
    return hit[labels]


def fill_from_border(free: np.ndarray, max_rounds: int = 64) -> np.ndarray:
    """The ``free`` pixels 4-connected to the image border through ``free`` pixels (a flood fill).

    Alternates row-run and column-run propagation, so it needs as many rounds as the paths have turns.
    """
    free = np.asarray(free, dtype=bool)
    if free.size == 0:
        return free.copy()
    reach = np.zeros_like(free)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = free[0, :], free[-1, :], free[:, 0], free[:, -1]
    rows, nr = _run_labels(free)
    cols_t, nc = _run_labels(free.T)
    for _ in range(max_rounds):
        before = int(reach.sum())
        reach = _spread_runs(reach, rows, nr)
        reach = _spread_runs(reach.T, cols_t, nc).T
        if int(reach.sum()) == before:
            break
    return reach


def _shifted(arr: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op`` (maximum or minimum) over each pixel's 3 x 3 neighbourhood (edges replicated)."""
    p = np.pad(arr, 1, mode="edge")
    h, w = arr.shape
    rows = op(op(p[:, :-2], p[:, 1:-1]), p[:, 2:])
    return op(op(rows[:-2], rows[1:-1]), rows[2:])[:h, :w]


def dilate(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Binary dilation by a 3 x 3 square, ``steps`` times."""
    out = np.asarray(mask, dtype=bool)
    for _ in range(steps):
        out = _shifted(out, np.maximum)
    return out


def erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Binary erosion by a 3 x 3 square, ``steps`` times."""
    out = np.asarray(mask, dtype=bool)
    for _ in range(steps):
        out = _shifted(out, np.minimum)
    return out


def _edges(grey: np.ndarray) -> np.ndarray:
    """Local contrast: the max minus min of each 3 x 3 neighbourhood."""
    return _shifted(grey, np.maximum) - _shifted(grey, np.minimum)


def catalogue_mask(
    image: Image.Image, tolerance: int = 18, edge: int = 10, opening: int = 1, studio: int = 253
) -> np.ndarray:
    """The product's mask (bool, image height x width) in a white-background catalogue picture.

    ``tolerance``: how far from white (in the darkest channel) a background pixel may be; ``edge``: a
    local contrast from which a near-white pixel stops the fill (a faint outline); ``opening``: the
    3 x 3 openings that remove specks (0: none); ``studio``: enclosed flat patches (5 x 5 or more) at least
    this white are holes, not product (0: keep every hole filled).
    """
    rgb = image.convert("RGB")
    arr = np.asarray(rgb, dtype=np.int16)
    whiteness = arr.min(axis=2)
    spread = arr.max(axis=2) - whiteness  # tinted pixels are not background however light
    free = (whiteness >= 255 - tolerance) & (spread <= tolerance)
    if edge > 0:
        free &= _edges(np.asarray(rgb.convert("L"), dtype=np.int16)) < edge
    fg = ~fill_from_border(free)
    if studio > 0:  # enclosed patches of pure studio white (between arm and body, in a handle) are holes
        pure = free & (whiteness >= studio) & fg
        fg &= ~dilate(erode(pure, 2), 2)
    if opening > 0 and fg.any():
        fg = dilate(erode(fg, opening), opening)
    return fg
