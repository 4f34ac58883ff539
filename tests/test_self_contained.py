"""A catalogue is one directory: its manifest names the model by name and content hash (never an absolute
path), a model that does not ship with lookalike travels inside it, and a missing or changed model gets an
error that says which file and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lookalike import Catalog, read_csv
from lookalike.errors import ExtractorNotFoundError, ModelMismatchError
from lookalike.extractors import register_onnx_model, remove_onnx_model
from lookalike.extractors.identity import file_sha256, find_by_sha256, model_family

from .conftest import PRODUCTS_CSV, PRODUCTS_DIR
from .test_quantize import CFG, tiny_cnn

QUERY = "20842"
PHOTO = PRODUCTS_DIR / "images" / "10438.jpg"


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _build(root: Path, extractor: str) -> list[str]:
    with Catalog.create(root, extractor=extractor) as cat:
        cat.ingest(read_csv(PRODUCTS_CSV), processes=False)
        return [h.id for h in cat.search(PHOTO, k=5)]


def _user_model(tmp_path: Path, name: str = "tiny-shop", seed: int = 11) -> Path:
    """A user model whose weights no other test registers (the same weights under another name would be
    found by their hash)."""
    path = tiny_cnn(_weights_dir(tmp_path) / f"{name}.onnx", seed)
    register_onnx_model(name, path, CFG, persist=True)
    return path


def _weights_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir(exist_ok=True)
    return folder


def test_user_model_travels_with_the_catalogue(tmp_path):
    weights = _user_model(tmp_path)
    before = _build(tmp_path / "shop", "tiny-shop")
    manifest = json.loads((tmp_path / "shop" / "manifest.json").read_text())
    entry = manifest["extractor"]
    assert entry["name"] == "tiny-shop" and entry["sha256"] == file_sha256(weights)
    assert entry["copy"] == "models/tiny-shop.onnx" and entry["packaged"] is False
    assert not [s for s in _strings(manifest) if s.startswith("/")]  # no absolute path anywhere
    assert (tmp_path / "shop" / "models" / "tiny-shop.onnx").read_bytes() == weights.read_bytes()

    # another machine: the catalogue moved, the user's model folder and file are gone
    moved = tmp_path / "elsewhere" / "shop"
    shutil.copytree(tmp_path / "shop", moved)
    shutil.rmtree(tmp_path / "shop")
    remove_onnx_model("tiny-shop")
    weights.unlink()
    with Catalog.open(moved) as cat:
        assert [h.id for h in cat.search(PHOTO, k=5)] == before
        assert cat.extractor.name == "tiny-shop"


def test_packaged_model_is_named_not_copied(tmp_path):
    before = _build(tmp_path / "shop", "efficientnet-lite0")
    manifest = json.loads((tmp_path / "shop" / "manifest.json").read_text())
    assert manifest["extractor"]["packaged"] is True and "copy" not in manifest["extractor"]
    assert not (tmp_path / "shop" / "models").exists()
    assert not [s for s in _strings(manifest) if s.startswith("/")]
    moved = tmp_path / "other" / "shop"
    shutil.move(tmp_path / "shop", moved)
    with Catalog.open(moved) as cat:
        assert [h.id for h in cat.search(PHOTO, k=5)] == before


def test_missing_model_says_which_file_and_how(tmp_path):
    _user_model(tmp_path)
    _build(tmp_path / "shop", "tiny-shop")
    shutil.rmtree(tmp_path / "shop" / "models")
    remove_onnx_model("tiny-shop")
    with Catalog.open(tmp_path / "shop") as cat, pytest.raises(ExtractorNotFoundError) as err:
        cat.search(PHOTO, k=3)
    text = str(err.value)
    assert "tiny-shop.onnx" in text and str(tmp_path / "shop" / "models") in text
    assert "lookalike models add tiny-shop" in text


def test_other_weights_under_the_same_name_are_refused(tmp_path):
    _user_model(tmp_path)
    _build(tmp_path / "shop", "tiny-shop")
    shutil.rmtree(tmp_path / "shop" / "models")
    tiny_cnn(_weights_dir(tmp_path) / "tiny-shop.onnx", seed=7)  # retrained in place: other vectors
    with Catalog.open(tmp_path / "shop") as cat, pytest.raises(ModelMismatchError, match="other weights"):
        cat.search(PHOTO, k=3)
    with pytest.raises(ModelMismatchError, match="sha256"):
        from lookalike import create_extractor

        Catalog.open(tmp_path / "shop", extractor=create_extractor("tiny-shop"))


def test_same_weights_under_another_name_are_found_by_hash(tmp_path):
    weights = _user_model(tmp_path)
    before = _build(tmp_path / "shop", "tiny-shop")
    shutil.rmtree(tmp_path / "shop" / "models")
    remove_onnx_model("tiny-shop")
    renamed = weights.with_name("tiny-shop-v1.onnx")
    weights.rename(renamed)
    register_onnx_model("tiny-shop-v1", renamed, CFG, persist=True)
    assert find_by_sha256(file_sha256(renamed)) == "tiny-shop-v1"
    with Catalog.open(tmp_path / "shop") as cat:
        assert [h.id for h in cat.search(PHOTO, k=5)] == before


def test_a_damaged_copy_is_refused(tmp_path):
    _user_model(tmp_path)
    _build(tmp_path / "shop", "tiny-shop")
    tiny_cnn(tmp_path / "shop" / "models" / "tiny-shop.onnx", seed=3)
    with Catalog.open(tmp_path / "shop") as cat, pytest.raises(ModelMismatchError, match="damaged"):
        cat.search(PHOTO, k=3)


def test_model_family_strips_variant_suffixes():
    assert model_family("lookalike-fashion-fp32") == "lookalike-fashion"
    assert model_family("lookalike-fashion-fp32-int8") == "lookalike-fashion"
    assert model_family("lookalike-fashion") == "lookalike-fashion"
    assert model_family("-int8") == "-int8"


def test_a_manifest_from_before_hashes_keeps_the_fp32_model_it_was_built_with(tmp_path):
    """Before the packaged default became INT8, ``lookalike-fashion`` was the FP32 file and manifests held
    its absolute path: such a catalogue still gets FP32 query vectors (now ``lookalike-fashion-fp32``)."""
    before = _build(tmp_path / "shop", "lookalike-fashion-fp32")
    manifest_path = tmp_path / "shop" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["extractor"]
    for key in ("sha256", "file", "packaged"):
        entry.pop(key)
    entry["name"] = "lookalike-fashion"
    entry["path"] = "/opt/old-venv/lib/python3.11/site-packages/lookalike/models/lookalike-fashion.onnx"
    manifest_path.write_text(json.dumps(manifest))
    with Catalog.open(tmp_path / "shop") as cat:
        assert cat.extractor.name == "lookalike-fashion-fp32"
        assert [h.id for h in cat.search(PHOTO, k=5)] == before


def test_a_migrated_copy_takes_the_model_along(tmp_path):
    from lookalike.migrate import migrate_catalog

    weights = _user_model(tmp_path)
    before = _build(tmp_path / "shop", "tiny-shop")
    migrate_catalog(tmp_path / "shop", tmp_path / "copy", src_backend="embedded", dst_backend="embedded")
    assert (tmp_path / "copy" / "models" / "tiny-shop.onnx").read_bytes() == weights.read_bytes()
    remove_onnx_model("tiny-shop")
    weights.unlink()
    shutil.rmtree(tmp_path / "shop")
    with Catalog.open(tmp_path / "copy") as cat:
        assert [h.id for h in cat.search(PHOTO, k=5)] == before
