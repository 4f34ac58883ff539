"""INT8 variants: quantising any ONNX extractor, registering ``<name>-int8``, choosing it when measured.

A small random CNN (two convolutions, a MatMul head) stands in for a real model: it has what trips a
quantiser (a convolution on the raw picture, a MatMul whose per-channel INT8 kernel onnxruntime lacks),
and it quantises in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike import Catalog
from lookalike.errors import ExtractorNotFoundError
from lookalike.extractors import PreprocessCfg, create_extractor, register_onnx_model
from lookalike.extractors.quantize import preferred_extractor, quantize_extractor
from lookalike.imaging import load_image

from .conftest import PRODUCTS_DIR, run_cli

IMAGES = PRODUCTS_DIR / "images"


def tiny_cnn(path: Path, seed: int = 0) -> Path:
    """Conv(3->16, stride 2) ReLU Conv(16->32) ReLU GlobalAveragePool Flatten MatMul(32->24): (n, 24)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((32, 16, 3, 3)) * 0.15).astype(np.float32)
    w3 = (rng.standard_normal((32, 24)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="stem", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="body", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "w3"], ["embedding"], name="head"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 24])],
        [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


CFG = PreprocessCfg(size=32, mean=(127.0,) * 3, std=(128.0,) * 3)


@pytest.fixture()
def tiny(tmp_path) -> str:
    register_onnx_model("tiny-cnn", tiny_cnn(tmp_path / "tiny.onnx"), CFG, persist=True)
    return "tiny-cnn"


@pytest.fixture()
def tiny_int8(tiny) -> str:
    result = quantize_extractor(tiny, calibration=IMAGES, images=16)
    assert result.name == "tiny-cnn-int8" and result.calibration_images == 16
    return result.name


def embeddings(name: str) -> np.ndarray:
    ext = create_extractor(name)
    return ext.embed([load_image(p) for p in sorted(IMAGES.glob("*.jpg"))])


def test_quantised_model_is_registered_and_close_to_fp32(tiny, tiny_int8):
    import onnx

    fp32, int8 = embeddings(tiny), embeddings(tiny_int8)
    assert int8.shape == fp32.shape == (16, 24)
    cosine = (fp32 * int8).sum(axis=1)
    assert cosine.min() > 0.97
    ops = [n.op_type for n in onnx.load(str(create_extractor(tiny_int8).path)).graph.node]
    assert "QLinearConv" in ops  # the body runs in INT8
    assert ops.count("Conv") == 1  # the convolution on the raw picture stays FP32


def test_a_graph_that_does_not_run_is_requantised_with_matmuls_in_fp32(tiny, monkeypatch):
    import onnx

    import lookalike.extractors.quantize as q

    real_runs, calls = q._runs, []

    def first_fails(path: Path, input_name: str, sample: np.ndarray) -> bool:
        calls.append(path)
        return len(calls) > 1 and real_runs(path, input_name, sample)

    monkeypatch.setattr(q, "_runs", first_fails)
    result = quantize_extractor(tiny, calibration=IMAGES, images=8)
    ops = [n.op_type for n in onnx.load(str(result.path)).graph.node]
    assert len(calls) == 2 and "MatMul" in ops and "QLinearMatMul" not in ops and "QLinearConv" in ops


def test_the_int8_variant_is_preferred_only_once_measured_within_the_limit(tiny, tiny_int8, tmp_path):
    spec_path = create_extractor(tiny_int8).path.with_suffix(".json")
    spec = json.loads(spec_path.read_text())
    assert spec["quantization"]["source"] == tiny and spec["quantization"]["quality"] is None
    assert preferred_extractor(tiny) == tiny  # not measured yet

    def record(accepted: bool) -> None:
        spec["quantization"]["quality"] = {"accepted": accepted, "max_loss": 0.004 if accepted else 0.03}
        spec_path.write_text(json.dumps(spec))

    record(False)
    assert preferred_extractor(tiny) == tiny
    record(True)
    assert preferred_extractor(tiny) == tiny_int8
    tiny_cnn(tmp_path / "tiny.onnx", seed=1)  # the FP32 weights change: the measurement is stale
    assert preferred_extractor(tiny) == tiny


def test_a_new_catalogue_without_a_model_uses_the_accepted_int8_default(tiny, tiny_int8, tmp_path, monkeypatch):
    spec_path = create_extractor(tiny_int8).path.with_suffix(".json")
    spec = json.loads(spec_path.read_text())
    spec["quantization"]["quality"] = {"accepted": True, "max_loss": 0.004}
    spec_path.write_text(json.dumps(spec))
    monkeypatch.setattr("lookalike.catalog.backend_choice.DEFAULT_EXTRACTOR", tiny)
    with Catalog.create(tmp_path / "auto") as cat:
        assert cat.extractor_name == tiny_int8
    with Catalog.create(tmp_path / "explicit", extractor=tiny) as cat:  # asked by name: exactly that
        assert cat.extractor_name == tiny


def test_only_onnx_extractors_can_be_quantised():
    with pytest.raises(ExtractorNotFoundError, match="not an ONNX extractor"):
        quantize_extractor("colour-histogram", calibration=IMAGES, images=4)


def test_models_quantize_command(tiny, capsys):
    code, out, err = run_cli(
        capsys, "models", "quantize", tiny, "--calibration", IMAGES, "--images", "8", "--no-evaluate"
    )
    assert code == 0, err
    assert "wrote tiny-cnn-int8" in out and "8 calibration pictures" in out
    code, out, _ = run_cli(capsys, "models")
    assert "tiny-cnn-int8" in out


def test_an_int8_graph_is_not_quantised_again(tiny_int8, tmp_path):
    copy = tmp_path / "renamed.onnx"
    copy.write_bytes(create_extractor(tiny_int8).path.read_bytes())
    register_onnx_model("tiny-renamed", copy, CFG, persist=True)
    with pytest.raises(ExtractorNotFoundError, match="already an INT8 model"):
        quantize_extractor("tiny-renamed", calibration=IMAGES, images=4)


def test_default_calibration_pictures_come_from_the_given_datasets_folder(tmp_path):
    from lookalike.extractors.quantize import calibration_paths

    folder = tmp_path / "datasets" / "fashion-product-images-small"
    (folder / "images").mkdir(parents=True)
    rows = ["image,articleType"]
    for i, picture in enumerate(sorted(IMAGES.glob("*.jpg"))[:6]):
        pid = 11 + i  # ids divisible by 5 are the test split: never calibration pictures
        (folder / "images" / f"{pid}.jpg").write_bytes(picture.read_bytes())
        rows.append(f"images/{pid}.jpg,Tshirts")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    picked = calibration_paths(None, n=10, datasets=tmp_path / "datasets")
    assert sorted(p.stem for p in picked) == ["11", "12", "13", "14", "16"]
    assert all(p.parent == folder / "images" for p in picked)


def test_the_quantisers_root_logger_warnings_are_dropped_and_others_kept(caplog):
    import logging
    import os

    from lookalike.cli.options import quiet_onnx_tools

    def record(path: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("root", level, path, 1, message, None, None)

    tool = os.sep.join(["", "venv", "site-packages", "onnxruntime", "quantization", "base_quantizer.py"])
    root = logging.getLogger()
    with caplog.at_level(logging.INFO), quiet_onnx_tools():
        root.handle(record(tool, "Inference failed or unsupported type to quantize"))
        root.handle(record(os.sep.join(["", "src", "lookalike", "catalog.py"]), "ours"))
        root.handle(record(tool, "a real failure", logging.ERROR))
    root.handle(record(tool, "after the block"))
    assert [r.getMessage() for r in caplog.records] == ["ours", "a real failure", "after the block"]
