"""Big flat pictures must not amplify memory: reduced on decoding, few decoded at once, capped by the
bytes a decode holds (issue 14, item 2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageError, ImageTooLargeError
from lookalike.imaging import DecodeLimits, open_image_bytes, set_decode_concurrency, slots
from lookalike.imaging import decode as decode_mod

SRC = Path(__file__).resolve().parents[1] / "src"
MB = 1024 * 1024


def _png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


# The service's upload path (Catalog.search on the uploaded bytes, mirror view on), four at once in
# threads; prints the process's resident memory before and its peak (VmHWM) after.
_PROBE = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from PIL import Image
    from lookalike import Catalog
    from lookalike.imaging import DecodeLimits

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise SystemExit("no " + key)

    cat = Catalog.open(sys.argv[1], decode_limits=DecodeLimits(max_bytes=10 * 2**20, max_pixels=40_000_000))
    data = Path(sys.argv[2]).read_bytes()
    small = Path(sys.argv[3]).read_bytes()
    expected = [h.id for h in cat.search(small, k=5)]  # also warms the model up
    before = status("VmHWM")
    results, errors = [], []

    def go():
        try:
            results.append([h.id for h in cat.search(data, k=5)])
        except BaseException as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"before": before, "peak": status("VmHWM"), "results": results,
                      "expected": expected, "errors": errors}))
    """
)


def test_four_big_flat_uploads_at_once_stay_within_memory(built_catalog, tmp_path):
    # A flat 6324 x 6324 PNG (under the 40 MP cap) is ~130 KB on the wire but 160 MB decoded; the old
    # decoder also made an EXIF copy and a full-size mirror image: ~1.7 GB over the baseline for four.
    colour = (200, 30, 60)
    big = tmp_path / "flat.png"
    Image.new("RGB", (6324, 6324), colour).save(big, format="PNG")
    assert big.stat().st_size < 1_000_000
    small = tmp_path / "small.png"
    Image.new("RGB", (600, 600), colour).save(small, format="PNG")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env.pop(slots.CONCURRENCY_ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(built_catalog.path), str(big), str(small)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["results"] == [report["expected"]] * 4  # each upload still gets the right answer
    grown = (report["peak"] - report["before"]) / MB
    # less than four full-size decoded pictures (4 x 160 MB) at once: measured ~360 MB, old code ~1,700 MB
    assert grown < 640, f"peak resident memory grew by {grown:.0f} MB"


def test_big_picture_is_reduced_band_by_band_to_the_same_pixels():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(2300, 2100), dtype=np.uint8)
    pal = Image.fromarray(arr, mode="L").convert("P")
    pal.info["transparency"] = 7
    out = open_image_bytes(_png(pal))
    assert out.mode == "RGB" and out.size == (1050, 1150)  # 2x smaller, shorter side still >= 1024
    whole = decode_mod._rgb(Image.open(io.BytesIO(_png(pal)))).reduce(2)
    assert np.array_equal(np.asarray(out), np.asarray(whole))

    deep = Image.fromarray((rng.integers(0, 65536, size=(2100, 2050))).astype(np.uint16))
    out = open_image_bytes(_png(deep))
    whole = decode_mod._rgb(Image.open(io.BytesIO(_png(deep)))).reduce(2)
    assert np.array_equal(np.asarray(out), np.asarray(whole))


def test_reduction_keeps_enough_pixels_for_the_model_and_exif_orientation():
    img = Image.new("RGB", (4100, 2200), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 2050, 2200))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = open_image_bytes(_png(img, exif=exif), draft_size=224)
    assert out.size == (1100, 2050)
    assert out.getpixel((550, 5))[2] > 200 and out.getpixel((550, 2040))[0] > 200  # blue on top


def test_ordinary_pictures_are_not_reduced():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, size=(2000, 1500, 3), dtype=np.uint8))
    out = open_image_bytes(_png(img), draft_size=224)
    assert out.size == (1500, 2000)
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_cap_counts_the_bytes_a_decode_holds():
    limits = DecodeLimits(max_decoded_bytes=50_000)
    grey = _png(Image.new("L", (200, 200), 90))  # 40,000 bytes held
    assert open_image_bytes(grey, limits).size == (200, 200)
    rgb = _png(Image.new("RGB", (200, 200), (90, 90, 90)))  # 160,000 bytes held (4 a pixel)
    with pytest.raises(ImageTooLargeError, match="bytes decoded"):
        open_image_bytes(rgb, limits)
    assert DecodeLimits(max_pixels=10).decoded_bytes_cap == 40


def test_big_decodes_wait_for_a_slot():
    data = _png(Image.new("RGB", (3000, 3000), (1, 2, 3)))  # 36 MB decoded: a big decode
    assert decode_mod.decoded_bytes("RGB", (3000, 3000)) > slots.BIG_DECODE_BYTES
    set_decode_concurrency(1)
    try:
        done = threading.Event()

        def decode() -> None:
            open_image_bytes(data)
            done.set()

        with slots.decode_slot(slots.BIG_DECODE_BYTES + 1):  # the only slot is taken
            worker = threading.Thread(target=decode)
            worker.start()
            time.sleep(1.0)
            assert not done.is_set()
            open_image_bytes(_png(Image.new("RGB", (500, 500))))  # a small picture does not wait
        worker.join(30)
        assert done.is_set()
    finally:
        set_decode_concurrency(slots.DEFAULT_DECODE_CONCURRENCY)


def test_slots_are_made_on_first_use_and_sized_from_the_environment():
    code = (
        "import lookalike.imaging, lookalike.imaging.slots as s; assert s._slots is None; print(s.decode_concurrency())"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), slots.CONCURRENCY_ENV: "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_bad_concurrency_setting_is_refused(monkeypatch):
    monkeypatch.setenv(slots.CONCURRENCY_ENV, "zero")
    with pytest.raises(ImageError, match=slots.CONCURRENCY_ENV):
        slots._from_env()
    with pytest.raises(ValueError):
        set_decode_concurrency(0)
