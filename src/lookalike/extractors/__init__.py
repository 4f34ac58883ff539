"""Feature extractors behind one interface and one registry.

Importing this package loads the built-in extractors, which register themselves with the registry
(cheap: no model is loaded). Python imports the package before any of its modules, so
``lookalike.extractors.registry`` alone also knows them.
"""

# builtin and hub_names are imported for their side effect: their register_extractor calls.
from lookalike.extractors import builtin, hub_names  # noqa: F401
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
