"""One exception tree for the whole library.

Every error lookalike raises on purpose is a :class:`LookalikeError`. The CLI turns it into one line and
a non-zero exit code (``exit_code``: 1, or 65 for a damaged catalogue, 74 for a full disk, 75 when another
ingest holds the catalogue); the web service turns it into a JSON response whose status comes from
``status_code``. Lower-layer errors (Pillow, SQLite, httpx, onnxruntime) are mapped to these at the
boundary where they happen, never leaked.
"""

from __future__ import annotations

__all__ = [
    "CatalogBusyError",
    "CatalogDamagedError",
    "CatalogError",
    "CatalogExistsError",
    "CatalogNotFoundError",
    "CatalogSwitchedError",
    "ExtractorNotFoundError",
    "FetchError",
    "FetchTimeoutError",
    "FetchTooLargeError",
    "ImageDecodeError",
    "ImageError",
    "ImageTooLargeError",
    "InvalidProductError",
    "InvalidQueryError",
    "LookalikeError",
    "ModelLoadError",
    "ModelMismatchError",
    "ProductNotFoundError",
    "SourceError",
    "StorageFullError",
    "URLNotAllowedError",
    "UnsupportedContentTypeError",
    "UnsupportedImageError",
]


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""

    status_code: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- images -------------------------------------------------------------------------------------
class ImageError(LookalikeError):
    """The bytes given as an image cannot be used."""

    status_code = 400


class ImageDecodeError(ImageError):
    """The bytes are not a readable image (corrupt, truncated, not an image at all)."""


class UnsupportedImageError(ImageError):
    """A real file, but a format lookalike does not decode (SVG, PDF, HEIC without its decoder...)."""

    status_code = 415


class ImageTooLargeError(ImageError):
    """Too many bytes, or too many pixels (a decompression bomb)."""

    status_code = 413


# --- URL fetching -------------------------------------------------------------------------------
class FetchError(LookalikeError):
    """An image URL could not be fetched."""

    status_code = 400


class URLNotAllowedError(FetchError):
    """The URL's scheme or host is refused (private address, loopback, file:, ...)."""


class FetchTimeoutError(FetchError):
    """The server did not answer, or sent too slowly, within the time allowed."""

    status_code = 504


class FetchTooLargeError(FetchError):
    """The body is larger than the byte cap."""

    status_code = 413


class UnsupportedContentTypeError(FetchError):
    """The server answered with something that is not an image."""

    status_code = 415


# --- models -------------------------------------------------------------------------------------
class ExtractorNotFoundError(LookalikeError):
    """No extractor is registered under that name."""

    status_code = 400


class ModelLoadError(LookalikeError):
    """An extractor's weights cannot be found or loaded."""


# --- catalogues ---------------------------------------------------------------------------------
class CatalogError(LookalikeError):
    """A catalogue directory is missing, damaged or used the wrong way."""


class CatalogNotFoundError(CatalogError):
    """No catalogue at that path."""

    status_code = 404


class CatalogExistsError(CatalogError):
    """A catalogue already exists there (and was made with other settings)."""

    status_code = 409


class ModelMismatchError(CatalogError):
    """The catalogue was built with another extractor than the one asked for."""

    status_code = 409


class CatalogBusyError(CatalogError):
    """Another ingest is running on this catalogue (its ingest lock is held)."""

    status_code = 409
    exit_code = 75  # EX_TEMPFAIL: try again later


class CatalogSwitchedError(CatalogError):
    """A write reached a generation of the catalogue that no longer serves (``lookalike reindex`` switched it
    meanwhile): nothing was written; open the catalogue again (the service does so by itself) and retry."""

    status_code = 503
    exit_code = 75  # EX_TEMPFAIL: run it again


class CatalogDamagedError(CatalogError):
    """The catalogue's files are damaged (a product store page SQLite cannot read); ``lookalike check`` lists
    what is wrong."""

    exit_code = 65  # EX_DATAERR


class StorageFullError(CatalogError):
    """The disk (or the user's quota) is full: nothing was written (SQLite rolled back, no half picture
    kept). Free space and try again; an interrupted ingest resumes."""

    status_code = 507  # Insufficient Storage
    exit_code = 74  # EX_IOERR


class ProductNotFoundError(LookalikeError):
    """No product with that id in the catalogue."""

    status_code = 404


class InvalidQueryError(LookalikeError):
    """A search request that cannot be answered as asked (bad k, bad filter, no query...)."""

    status_code = 422


class InvalidProductError(InvalidQueryError):
    """A product that cannot be stored as given: an id that is empty or only whitespace, a price that is
    not a finite number."""


class SourceError(LookalikeError):
    """An ingest source (folder, CSV) cannot be read or has no usable rows."""

    status_code = 400
