"""CLIP / SigLIP / DINOv2 extractors on tiny randomly initialised transformers checkpoints (offline)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

transformers = pytest.importorskip("transformers")
import torch  # noqa: E402  (transformers' models need it; the skip above covers a missing install)

from lookalike import create_extractor, list_extractors  # noqa: E402
from lookalike.errors import ModelLoadError  # noqa: E402
from lookalike.extractors.hub import (  # noqa: E402
    HubPreprocessCfg,
    preprocess_cfg_from_processor,
)
from lookalike.extractors.onnx import OnnxExtractor  # noqa: E402
from lookalike.imaging import load_image  # noqa: E402

from .conftest import PHOTOS  # noqa: E402

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
_TEXT = {**_VISION, "vocab_size": 64, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1}
FAMILIES = ("clip", "siglip", "dinov2")
DIMS = {"clip": 24, "siglip": 32, "dinov2": 48}


def _processor_class(name: str) -> Any:
    """The PIL-backed image processor (transformers 5: ``...Pil``; 4: the slow class)."""
    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def _build(family: str, folder: Path) -> tuple[Any, Any]:
    """Save a tiny random ``family`` checkpoint and its image processor to ``folder``."""
    torch.manual_seed(0)
    vision = {**_VISION, "image_size": 32, "patch_size": 8}
    if family == "clip":
        cfg = transformers.CLIPConfig(text_config=_TEXT, vision_config=vision, projection_dim=DIMS["clip"])
        model = transformers.CLIPModel(cfg)
        processor = _processor_class("CLIPImageProcessor")(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    elif family == "siglip":
        model = transformers.SiglipModel(transformers.SiglipConfig(text_config=_TEXT, vision_config=vision))
        processor = _processor_class("SiglipImageProcessor")(size={"height": 32, "width": 32})
    else:
        cfg = transformers.Dinov2Config(
            hidden_size=DIMS["dinov2"],
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        model = transformers.Dinov2Model(cfg)
        processor = _processor_class("BitImageProcessor")(
            size={"shortest_edge": 40},
            crop_size={"height": 32, "width": 32},
            image_mean=list(IMAGENET_MEAN),
            image_std=list(IMAGENET_STD),
        )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model.eval(), processor


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any, Any]]:
    root = tmp_path_factory.mktemp("hub")
    return {f: (root / f, *_build(f, root / f)) for f in FAMILIES}


@pytest.fixture(scope="module")
def extractors(checkpoints: dict[str, tuple[Path, Any, Any]]) -> dict[str, Any]:
    return {f: create_extractor(f"{f}:{path}") for f, (path, _, _) in checkpoints.items()}


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in ((70, 100), (100, 70))]
    return [load_image(PHOTOS / "shoes.jpg"), load_image(PHOTOS / "tshirt.jpg"), *noise]


def _reference(family: str, model: Any, processor: Any, images: list[Image.Image]) -> np.ndarray:
    """What transformers itself computes: processor pixel_values through the model, L2-normalised."""
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        if family == "dinov2":
            out = model(pixel_values=pixel_values).last_hidden_state[:, 0]
        else:
            out = model.get_image_features(pixel_values=pixel_values)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
    vecs = out.numpy()
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_embedding_equals_transformers_on_processor_input(family, checkpoints, extractors, photos):
    _, model, processor = checkpoints[family]
    np.testing.assert_allclose(
        extractors[family].embed(photos), _reference(family, model, processor, photos), atol=1e-4
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_preprocess_matches_the_processor_pixel_values(family, checkpoints, extractors, photos):
    processor = checkpoints[family][2]
    expected = processor(images=photos, return_tensors="np")["pixel_values"]
    ours = np.stack([extractors[family].preprocess(img) for img in photos])
    assert ours.shape == expected.shape == (len(photos), 3, 32, 32)
    np.testing.assert_allclose(ours, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("family", "mode", "resize_size", "mean", "std"),
    [
        ("clip", "center_crop", None, OPENAI_MEAN, OPENAI_STD),
        ("siglip", "squash", None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ("dinov2", "center_crop", 40, IMAGENET_MEAN, IMAGENET_STD),
    ],
)
def test_preprocess_config_is_read_from_the_processor(extractors, family, mode, resize_size, mean, std):
    cfg = extractors[family].preprocess_cfg
    assert isinstance(cfg, HubPreprocessCfg)
    assert (cfg.size, cfg.resize_mode, cfg.resize_size, cfg.interpolation) == (
        32,
        mode,
        resize_size,
        "bicubic",
    )
    np.testing.assert_allclose(cfg.mean, np.array(mean) * 255, rtol=1e-6)
    np.testing.assert_allclose(cfg.std, np.array(std) * 255, rtol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_embeddings_are_unit_float32_of_the_model_dim(family, extractors, photos):
    vecs = extractors[family].embed(photos)
    assert extractors[family].dim == DIMS[family]
    assert vecs.shape == (len(photos), DIMS[family]) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert extractors[family].embed([]).shape == (0, DIMS[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_reloaded_extractor_gives_identical_embeddings(family, checkpoints, extractors, photos):
    again = create_extractor(f"{family}:{checkpoints[family][0]}")
    np.testing.assert_array_equal(again.embed(photos), extractors[family].embed(photos))


@pytest.mark.parametrize("family", FAMILIES)
def test_batches_match_single_images(family, extractors, photos):
    ext = extractors[family]
    batched = ext.embed(photos, batch_size=3)
    singles = np.stack([ext.embed_one(img) for img in photos])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_relative_directory_names_round_trip_as_absolute(checkpoints, monkeypatch, photos):
    path = checkpoints["clip"][0]
    monkeypatch.chdir(path.parent)
    ext = create_extractor(f"clip:./{path.name}")
    assert ext.name == f"clip:{path.resolve()}"
    monkeypatch.chdir("/")
    again = create_extractor(ext.name)
    assert again.name == ext.name and again.describe()["preprocess"] == ext.describe()["preprocess"]
    np.testing.assert_array_equal(again.embed(photos[:1]), ext.embed(photos[:1]))


def test_fashionclip_prefix_loads_a_clip_checkpoint(checkpoints, extractors, photos):
    ext = create_extractor(f"fashionclip:{checkpoints['clip'][0]}")
    assert ext.name.startswith("fashionclip:") and ext.describe()["family"] == "fashionclip"
    np.testing.assert_array_equal(ext.embed(photos[:2]), extractors["clip"].embed(photos[:2]))


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        create_extractor(f"clip:{tmp_path / 'nowhere'}")


def test_directory_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a transformers checkpoint"):
        create_extractor(f"dinov2:{tmp_path}")


def _copy_without_processor(checkpoint: Path, dst: Path) -> Path:
    shutil.copytree(checkpoint, dst, ignore=shutil.ignore_patterns("preprocessor_config.json"))
    return dst


def test_checkpoint_without_processor_config_gets_the_family_defaults(checkpoints, tmp_path):
    ext = create_extractor(f"dinov2:{_copy_without_processor(checkpoints['dinov2'][0], tmp_path / 'd')}")
    cfg = ext.preprocess_cfg
    assert (cfg.size, cfg.resize_size) == (224, 256)
    np.testing.assert_allclose(cfg.mean, np.array(IMAGENET_MEAN) * 255, rtol=1e-6)


def test_model_that_rejects_its_input_size_fails_at_load(checkpoints, tmp_path):
    folder = _copy_without_processor(checkpoints["clip"][0], tmp_path / "c")  # defaults: 224px, model: 32px
    with pytest.raises(ModelLoadError, match="rejects its preprocessor's 224px input"):
        create_extractor(f"clip:{folder}")


def test_checkpoint_of_another_family_is_refused(checkpoints):
    with pytest.raises(ModelLoadError, match="'clip' checkpoint, not DINOv2"):
        create_extractor(f"dinov2:{checkpoints['clip'][0]}")


def test_unreachable_hub_id_offline_says_how_to_get_the_weights(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"weights for acme/no-such-clip not found locally.*pass the directory"):
        create_extractor("clip:acme/no-such-clip")


def test_missing_transformers_names_the_extra(checkpoints, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'lookalike\[hub\]'"):
        create_extractor(f"clip:{checkpoints['clip'][0]}")


def _fake_hub_cache(cache: Path, repo_id: str, checkpoint: Path) -> None:
    """Lay ``checkpoint``'s files out as the HF cache does for ``repo_id``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(checkpoint, repo / "snapshots" / commit)


def test_named_model_is_available_only_from_the_hf_cache(checkpoints, extractors, tmp_path, monkeypatch, photos):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "clip-vit-b32" in list_extractors()
    assert "clip-vit-b32" not in list_extractors(available_only=True)
    _fake_hub_cache(cache, "openai/clip-vit-base-patch32", checkpoints["clip"][0])
    assert "clip-vit-b32" in list_extractors(available_only=True)
    ext = create_extractor("clip-vit-b32")
    assert ext.name == "clip-vit-b32"
    np.testing.assert_array_equal(ext.embed(photos[:2]), extractors["clip"].embed(photos[:2]))


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_onnx_matches_torch(family, extractors, tmp_path, photos):
    ext = extractors[family]
    path = ext.export_onnx(tmp_path / f"{family}.onnx")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert HubPreprocessCfg.from_dict(sidecar["preprocess"]) == ext.preprocess_cfg
    served = OnnxExtractor(family, path, ext.preprocess_cfg)
    batch = np.stack([ext.preprocess(img) for img in photos])
    assert served.dim == ext.dim
    np.testing.assert_allclose(served.embed_preprocessed(batch), ext.embed_preprocessed(batch), atol=1e-4)


@pytest.mark.parametrize(
    ("processor", "family", "expected"),
    [
        ({"size": 64, "crop_size": 56, "do_center_crop": True}, "clip", (56, "center_crop", 64)),
        ({"size": 48}, "siglip", (48, "squash", None)),
        (
            {"size": {"height": 64, "width": 64}, "do_center_crop": True, "crop_size": 56},
            "siglip",
            (56, "squash", 64),
        ),
        ({}, "dinov2", (224, "center_crop", 256)),
    ],
)
def test_processor_sizes_map_to_size_mode_and_resize(processor, family, expected):
    cfg = preprocess_cfg_from_processor(processor, family)
    assert (cfg.size, cfg.resize_mode, cfg.resize_size) == expected


def test_processor_without_normalisation_keeps_0_to_1_pixels():
    cfg = preprocess_cfg_from_processor({"do_normalize": False, "resample": 2}, "siglip")
    assert cfg.mean == (0.0, 0.0, 0.0) and cfg.std == (255.0, 255.0, 255.0) and cfg.interpolation == "bilinear"


@pytest.mark.parametrize(
    "processor",
    [
        {"size": {"height": 32, "width": 48}},
        {"size": {"shortest_edge": 32}, "do_center_crop": False},
        {"do_resize": False},
    ],
)
def test_unsupported_processor_configs_are_refused(processor):
    with pytest.raises(ModelLoadError):
        preprocess_cfg_from_processor(processor, "clip")


def test_naming_and_listing_models_never_imports_torch(checkpoints):
    code = (
        "import sys\n"
        "from lookalike.extractors import extractor_spec, list_extractors\n"
        f"spec = extractor_spec({'clip:' + str(checkpoints['clip'][0])!r})\n"
        "assert spec.available and spec.kind == 'hub', spec\n"
        "list_extractors(available_only=True)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
