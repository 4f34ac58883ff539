"""lookalike: visual search for fashion catalogues.

>>> import lookalike
>>> cat = lookalike.Catalog.create("my-catalog", extractor="efficientnet-lite0")   # doctest: +SKIP
>>> cat.ingest(lookalike.read_csv("products.csv"))                                  # doctest: +SKIP
>>> cat.search("photo.jpg", k=10, filters=lookalike.Filters(gender="Women"))        # doctest: +SKIP
"""

__version__ = "0.1.0"

from lookalike.catalog import Catalog, IngestProgress, IngestReport
from lookalike.errors import LookalikeError
from lookalike.extractors import (
    DEFAULT_EXTRACTOR,
    Extractor,
    PreprocessCfg,
    create_extractor,
    list_extractors,
    register_extractor,
    register_onnx_model,
)
from lookalike.product import Filters, Hit, Product
from lookalike.sources import IngestRecord, read_csv, read_folder

__all__ = [
    "DEFAULT_EXTRACTOR",
    "Catalog",
    "Extractor",
    "Filters",
    "Hit",
    "IngestProgress",
    "IngestRecord",
    "IngestReport",
    "LookalikeError",
    "PreprocessCfg",
    "Product",
    "__version__",
    "create_extractor",
    "list_extractors",
    "read_csv",
    "read_folder",
    "register_extractor",
    "register_onnx_model",
]
