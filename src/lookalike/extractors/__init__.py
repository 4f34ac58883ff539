"""Feature extractors behind one interface and one registry."""

from lookalike.extractors.base import Extractor, PreprocessCfg, l2_normalize
from lookalike.extractors.builtin import DEFAULT_EXTRACTOR
from lookalike.extractors.registry import (
    ExtractorSpec,
    create_extractor,
    extractor_spec,
    list_extractors,
    register_extractor,
    register_onnx_model,
    remove_onnx_model,
)

__all__ = [
    "DEFAULT_EXTRACTOR",
    "Extractor",
    "ExtractorSpec",
    "PreprocessCfg",
    "create_extractor",
    "extractor_spec",
    "l2_normalize",
    "list_extractors",
    "register_extractor",
    "register_onnx_model",
    "remove_onnx_model",
]
