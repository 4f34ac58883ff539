"""The picture store's write path (issue 15): hard links from local sources, the copy fall-back, durability."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from lookalike import Catalog, read_csv
from lookalike.catalog.pictures import PictureStore
from lookalike.imaging import DecodeLimits, image_format

from .conftest import PRODUCTS_DIR

LIMITS = DecodeLimits()


@dataclass
class Pic:
    sha: str
    data: bytes
    fmt: str | None
    image: Image.Image | None = None


def _pic(data: bytes) -> Pic:
    return Pic(hashlib.sha256(data).hexdigest(), data, image_format(data)[0])


def _source(tmp_path: Path, name: str = "13466.jpg") -> Path:
    src = tmp_path / "src" / name
    src.parent.mkdir()
    shutil.copyfile(PRODUCTS_DIR / "images" / name, src)
    return src


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name != ".lock"]


def test_a_local_picture_is_stored_as_a_hard_link_of_its_source(tmp_path):
    src = _source(tmp_path)
    store = PictureStore(tmp_path / "images")
    pic = _pic(src.read_bytes())
    rel = store.save_many([pic], LIMITS, None, [str(src)])[id(pic)]
    assert rel == f"{pic.sha[:2]}/{pic.sha}.jpg"
    stored = store.root / rel
    assert os.path.samefile(stored, src) and stored.read_bytes() == pic.data
    assert not _leftovers(store.root)
    store.remove_unused([rel], lambda _: False)  # a delete removes the catalogue's name, not the source
    assert not stored.exists() and src.read_bytes() == pic.data


def test_a_source_changed_since_it_was_hashed_is_not_linked(tmp_path):
    src = _source(tmp_path)
    pic = _pic(src.read_bytes())
    src.write_bytes((PRODUCTS_DIR / "images" / "17831.jpg").read_bytes())  # rewritten in place after hashing
    store = PictureStore(tmp_path / "images")
    stored = store.root / store.save_many([pic], LIMITS, None, [str(src)])[id(pic)]  # type: ignore[operator]
    assert stored.read_bytes() == pic.data and not os.path.samefile(stored, src)
    assert stored.stat().st_nlink == 1 and not _leftovers(store.root)


def test_links_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_LINK_PICTURES", "0")
    src = _source(tmp_path)
    store = PictureStore(tmp_path / "images")
    pic = _pic(src.read_bytes())
    stored = store.root / store.save_many([pic], LIMITS, None, [str(src)])[id(pic)]  # type: ignore[operator]
    assert stored.read_bytes() == pic.data and stored.stat().st_nlink == 1 and src.stat().st_nlink == 1


@pytest.mark.parametrize("source", ["missing", "url", None])
def test_a_picture_that_cannot_be_linked_is_copied(tmp_path, source):
    data = (PRODUCTS_DIR / "images" / "13466.jpg").read_bytes()
    where = {"missing": str(tmp_path / "gone.jpg"), "url": "https://example.invalid/13466.jpg", None: None}[source]
    store = PictureStore(tmp_path / "images")
    pic = _pic(data)
    stored = store.root / store.save_many([pic], LIMITS, None, [where])[id(pic)]  # type: ignore[operator]
    assert stored.read_bytes() == data and stored.stat().st_nlink == 1 and not _leftovers(store.root)


def test_a_re_encoded_picture_is_never_a_link(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (1400, 900), (200, 30, 30)).save(buf, format="PNG")  # over 1024 px: kept as an 800-px JPEG
    src = tmp_path / "big.png"
    src.write_bytes(buf.getvalue())
    store = PictureStore(tmp_path / "images")
    pic = _pic(buf.getvalue())
    rel = store.save_many([pic], LIMITS, None, [str(src)])[id(pic)]
    stored = store.root / rel  # type: ignore[operator]
    assert rel.endswith(".jpg") and not os.path.samefile(stored, src)  # type: ignore[union-attr]
    assert image_format(stored.read_bytes()) == ("JPEG", (800, 514))


def test_ingest_links_its_pictures_and_they_are_durable_before_the_rows_commit(tmp_path, monkeypatch, products_copy):
    csv = products_copy
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fsync", fsync)
    with Catalog.create(tmp_path / "cat", extractor="colour-histogram") as cat:
        real_upsert = cat.backend.upsert

        def upsert(items, *args, **kwargs):  # type: ignore[no-untyped-def]
            events.extend(("commit", it.image_file) for it in items if it.image_file)
            return real_upsert(items, *args, **kwargs)

        monkeypatch.setattr(cat.backend, "upsert", upsert)
        report = cat.ingest(read_csv(csv), batch_size=5)
        assert report.added == 16 and not report.failed
        root = str(cat.images_dir.resolve())
        committed = [rel for kind, rel in events if kind == "commit"]
        assert len(committed) == 16
        for rel in committed:
            when = events.index(("commit", rel))
            synced = {path for kind, path in events[:when] if kind == "fsync"}
            folder, name = os.path.join(root, os.path.dirname(rel)), os.path.basename(rel)
            assert folder in synced, rel  # the picture's name reached the disk before its row committed
            assert any(p.startswith(f"{folder}/.{name}.") and p.endswith(".tmp") for p in synced), rel  # its bytes
            pid = next(p.id for p in cat.products(limit=20) if cat.store.image_file_of(p.id) == rel)
            assert os.path.samefile(cat.image_path(pid), csv.parent / "images" / f"{pid}.jpg")
        assert cat.verify()["ok"] and not _leftovers(cat.images_dir)
